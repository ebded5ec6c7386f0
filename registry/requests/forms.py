"""The product forms: every rule of the product table (docs/domain.md), each with its own message.

One form asks for a new product, for it again after a rejection, and for a change; the deletion
form asks only for the licence plate, typed to confirm."""

import re
import uuid

from flask import current_app
from wtforms import (
    DateField,
    Form,
    FormField,
    HiddenField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, Optional, ValidationError

from ..inputs import StorableForm
from ..products.services import ContactData, ProductData
from ..reference import services as reference
from ..reference.models import ENVIRONMENTS, QUOTA_KINDS

NAME_MAX = 40
DESCRIPTION_MAX = 512
# C0 and C1 control characters, DEL, and the Unicode line and paragraph separators.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A description may span lines (tab, LF, CR); any other control character is refused (PostgreSQL
# cannot even store NUL).
DESCRIPTION_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def no_control_characters(form, field):
    if field.data and CONTROL_CHARACTERS.search(field.data):
        raise ValidationError(
            f"{field.label.text} cannot contain line breaks or control characters."
        )


def no_control_characters_but_line_breaks(form, field):
    if field.data and DESCRIPTION_CONTROL_CHARACTERS.search(field.data):
        raise ValidationError(f"{field.label.text} cannot contain control characters.")


def at_an_allowed_domain(form, field):
    """With CONTACT_EMAIL_DOMAINS set, a contact's email is at one of them or a subdomain: the
    registry emails its contacts, and only people of the organization may be them."""
    domains = current_app.config["CONTACT_EMAIL_DOMAINS"]
    if not domains or not field.data or field.errors or "@" not in field.data:
        return
    domain = field.data.rsplit("@", 1)[1]
    if any(domain == allowed or domain.endswith("." + allowed) for allowed in domains):
        return
    listed = domains[0] if len(domains) == 1 else ", ".join(domains[:-1]) + " or " + domains[-1]
    raise ValidationError(
        f"Use an email address at {listed}: a product's contacts must be people of the "
        "organization."
    )


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _lower(value):
    return value.strip().lower() if isinstance(value, str) else value


class ContactForm(Form):
    first_name = StringField(
        "First name",
        filters=[_strip],
        validators=[
            DataRequired("First name is required."),
            Length(max=60, message="First name must be 60 characters or fewer."),
            no_control_characters,
        ],
    )
    last_name = StringField(
        "Last name",
        filters=[_strip],
        validators=[
            DataRequired("Last name is required."),
            Length(max=60, message="Last name must be 60 characters or fewer."),
            no_control_characters,
        ],
    )
    email = StringField(
        "Email",
        filters=[_lower],
        validators=[
            DataRequired("Email is required."),
            Email("Enter a valid email address, like jane.doe@gov.bc.ca."),
            Length(max=254, message="Email must be 254 characters or fewer."),
            at_an_allowed_domain,
        ],
    )

    def to_data(self) -> ContactData:
        return ContactData(self.first_name.data, self.last_name.data, self.email.data)

    @property
    def is_blank(self) -> bool:
        return not any((self.first_name.data, self.last_name.data, self.email.data))


class OptionalContactForm(ContactForm):
    """The secondary technical lead: all three fields, or none."""

    def validate(self, extra_validators=None):
        if self.is_blank:
            for field in self:
                field.errors = []
                field.validators = [Optional()]
            return True
        return super().validate(extra_validators)


class NamespaceQuotaForm(Form):
    cpu = SelectField("CPU", validate_choice=False)
    memory = SelectField("Memory", validate_choice=False)
    storage = SelectField("Storage", validate_choice=False)
    snapshot = SelectField("Snapshots", validate_choice=False)


def new_submission_key() -> str:
    return uuid.uuid4().hex


class SubmitOnce:
    """A one-time key per rendered form: the same form sent twice (a double click, a re-sent
    POST) makes one request; the view shows the first instead of making a second."""

    submission_key = HiddenField(default=new_submission_key)

    @property
    def key(self) -> str | None:
        value = (self.submission_key.data or "").strip()
        return value if re.fullmatch(r"[0-9a-f]{32}", value) else None


class ProductForm(SubmitOnce, StorableForm):
    name = StringField(
        "Product name",
        filters=[_strip],
        validators=[
            DataRequired("Product name is required."),
            Length(
                max=NAME_MAX,
                message=f"Product name must be {NAME_MAX} characters or fewer.",
            ),
            no_control_characters,
        ],
    )
    description = TextAreaField(
        "Description",
        filters=[_strip],
        validators=[
            DataRequired("Description is required."),
            Length(
                max=DESCRIPTION_MAX,
                message=f"Description must be {DESCRIPTION_MAX} characters or fewer.",
            ),
            no_control_characters_but_line_breaks,
        ],
    )
    ministry = SelectField("Ministry", validate_choice=False)
    cluster = SelectField("Cluster", validate_choice=False)
    product_owner = FormField(ContactForm, "Product owner")
    primary_lead = FormField(ContactForm, "Primary technical lead")
    secondary_lead = FormField(OptionalContactForm, "Secondary technical lead (optional)")
    tools = FormField(NamespaceQuotaForm, "tools")
    dev = FormField(NamespaceQuotaForm, "dev")
    test = FormField(NamespaceQuotaForm, "test")
    prod = FormField(NamespaceQuotaForm, "prod")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        # The product this form asks about, if it exists already (request again, change): its
        # own name is not "another product's".
        self.own_plate: str | None = None
        self.ministry.choices = [("", "Choose a ministry")] + [
            (m.code, reference.ministry_label(m.code, m.name)) for m in reference.ministries()
        ]
        self.clusters = {c.name: c for c in reference.requestable_clusters(include_lab=True)}
        self.cluster.choices = [
            (c.name, c.display_name)
            for c in self.clusters.values()
            if not c.is_lab or user.is_super_admin
        ]
        if not self.cluster.data:
            self.cluster.data = reference.default_cluster()
        self.quota_options = reference.quota_options_by_kind()
        defaults = reference.default_quotas()
        for env in ENVIRONMENTS:
            for kind in QUOTA_KINDS:
                field = self[env][kind]
                field.choices = [(o.name, o.label) for o in self.quota_options.get(kind, [])]
                if not field.data:
                    field.data = defaults.get(kind)

    def validate_name(self, field):
        if field.data and not field.data[0].isalpha():
            raise ValidationError("Product name must start with a letter.")

    def validate_ministry(self, field):
        if field.data not in {code for code, _ in self.ministry.choices if code}:
            raise ValidationError("Choose a ministry from the list.")

    def validate_cluster(self, field):
        cluster = self.clusters.get(field.data)
        if cluster is None:
            raise ValidationError("Choose a cluster from the list.")
        if cluster.is_lab and not self.user.is_super_admin:
            raise ValidationError("Only admins can place a product on a lab cluster.")

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        owner = self.product_owner.form.email.data
        primary = self.primary_lead.form.email.data
        secondary = self.secondary_lead.form
        if owner and primary and owner == primary:
            self.primary_lead.form.email.errors.append(
                "The primary technical lead must be a different person from the product owner."
            )
            valid = False
        if (
            not secondary.is_blank
            and secondary.email.data
            and secondary.email.data in (owner, primary)
        ):
            secondary.email.errors.append(
                "The secondary technical lead must be a different person from the product "
                "owner and the primary technical lead."
            )
            valid = False
        for env in ENVIRONMENTS:
            for kind in QUOTA_KINDS:
                field = self[env][kind]
                if field.data not in {name for name, _ in field.choices}:
                    field.errors = [
                        *field.errors,
                        f"Choose a {kind} quota from the list.",
                    ]
                    valid = False
        return valid

    @property
    def ministry_label(self) -> str:
        return dict(self.ministry.choices).get(self.ministry.data, self.ministry.data or "")

    @property
    def namespace_quotas(self) -> list[tuple[str, dict[str, str]]]:
        """(environment, {kind: option}) for each namespace, as chosen in the form."""
        return [(env, {kind: self[env][kind].data for kind in QUOTA_KINDS}) for env in ENVIRONMENTS]

    @property
    def chosen_cluster(self):
        return self.clusters.get(self.cluster.data)

    def field_errors(self) -> dict[str, list[str]]:
        """Errors by the field's HTML name (``product_owner-email``), for inline validation."""
        errors: dict[str, list[str]] = {}
        for field in self:
            if isinstance(field, FormField):
                for sub in field:
                    errors[sub.name] = list(sub.errors)
            else:
                errors[field.name] = list(field.errors)
        return errors

    @staticmethod
    def values_of(data: dict) -> dict:
        """A request's recorded data (``ProductData.as_dict``) as the form's initial values."""
        contacts = data["contacts"]
        return {
            "name": data["name"],
            "description": data["description"],
            "ministry": data["ministry"],
            "cluster": data["cluster"],
            "product_owner": contacts["owner"],
            "primary_lead": contacts["primary_lead"],
            "secondary_lead": contacts.get("secondary_lead") or {},
            **{env: data["namespaces"][env] for env in ENVIRONMENTS},
        }

    def to_data(self) -> ProductData:
        secondary = self.secondary_lead.form
        return ProductData(
            name=self.name.data,
            description=self.description.data,
            ministry_code=self.ministry.data,
            cluster_name=self.cluster.data,
            owner=self.product_owner.form.to_data(),
            primary_lead=self.primary_lead.form.to_data(),
            secondary_lead=None if secondary.is_blank else secondary.to_data(),
            quotas={
                env: {kind: self[env][kind].data for kind in QUOTA_KINDS} for env in ENVIRONMENTS
            },
        )


# The contact emails: a change to one may make or clear another's "a different person" error.
CONTACT_EMAILS = ("product_owner-email", "primary_lead-email", "secondary_lead-email")
CONTACT_GROUPS = ("product_owner", "primary_lead", "secondary_lead")


JUSTIFICATION_MAX = 1000


class ChangeForm(ProductForm):
    """A change to a live product: everything but the cluster, which never changes. A quota
    increase that goes to review also needs ``justification`` (asked on the check step)."""

    justification_max = JUSTIFICATION_MAX

    justification = TextAreaField(
        "Why is more needed?",
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        validators=[
            Optional(),
            Length(
                max=JUSTIFICATION_MAX,
                message=f"Keep the reason to {JUSTIFICATION_MAX} characters or fewer.",
            ),
        ],
    )

    # A temporary increase: the day its quotas go back (empty: for good).
    ends_on = DateField(
        "Quotas go back on",
        validators=[Optional()],
        format="%Y-%m-%d",
        render_kw={"autocomplete": "off"},
    )

    def __init__(self, *args, product, **kwargs):
        super().__init__(*args, **kwargs)
        self.product = product
        self.own_plate = product.licence_plate
        self.cluster.data = product.cluster_name


class DeletionForm(SubmitOnce, StorableForm):
    confirmation = StringField("Type the licence plate to confirm", filters=[_lower])
    reason = TextAreaField(
        "Why delete it?",
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        validators=[
            Length(
                max=JUSTIFICATION_MAX,
                message=f"Keep the reason to {JUSTIFICATION_MAX} characters or fewer.",
            )
        ],
    )
    reason_max = JUSTIFICATION_MAX
