"""The reference data of docs/domain.md, as seeded into a new database."""

CLUSTERS = [
    # name, display name, lab, default, paired with
    ("silver", "Silver Hosting Tier", False, True, None),
    ("gold", "Gold Hosting Tier", False, False, "golddr"),
    ("golddr", "Gold (DR) Calgary", False, False, None),
    ("emerald", "Emerald Hosting Tier", False, False, None),
    ("klab", "KLAB Kamloops", True, False, None),
    ("klab2", "KLAB2 Kamloops", True, False, None),
    ("clab", "CLAB Calgary", True, False, None),
]

# What each cluster is, in plain words, shown beside the cluster choice on the product form.
CLUSTER_DESCRIPTIONS = {
    "silver": "The default home for most products: Kamloops, one data centre.",
    "gold": (
        "For services that must keep running if a data centre fails: built in Kamloops and, as a "
        "disaster-recovery copy, on Gold (DR) in Calgary; you get both."
    ),
    "golddr": "Gold's disaster-recovery copy in Calgary; comes with gold, never asked for alone.",
    "emerald": (
        "For products with protected data that need stricter network isolation (Kamloops)."
    ),
    "klab": "A lab cluster for the platform team's experiments (Kamloops). Not for real products.",
    "klab2": "A second lab cluster in Kamloops, for the platform team's experiments.",
    "clab": "A lab cluster in Calgary, for the platform team's experiments.",
}

# golddr is reached only through gold: nobody asks for it directly.
REQUESTABLE_CLUSTERS_EXCLUDE = {"golddr"}

MINISTRIES = [
    ("AEST", "Post-Secondary Education and Future Skills"),
    ("AG", "Attorney General"),
    ("AGRI", "Agriculture and Food"),
    ("ALC", "Agricultural Land Commission"),
    ("BCPC", "BC Pension Corporation"),
    ("CITZ", "Citizens' Services"),
    ("DBC", "Destination BC"),
    ("EAO", "Environmental Assessment Office"),
    ("EDUC", "Education and Child Care"),
    ("EMCR", "Emergency Management and Climate Readiness"),
    ("EMPR", "Energy, Mines and Low Carbon Innovation"),
    ("ENV", "Environment and Climate Change Strategy"),
    ("FIN", "Finance"),
    ("FLNR", "Forests"),
    ("HLTH", "Health"),
    ("HOUS", "Housing"),
    ("IRR", "Indigenous Relations and Reconciliation"),
    ("JEDC", "Jobs, Economic Development and Innovation"),
    ("LBR", "Labour"),
    ("LDB", "Liquor Distribution Branch"),
    ("MAH", "Municipal Affairs"),
    ("MCF", "Children and Family Development"),
    ("MMHA", "Mental Health and Addictions"),
    ("PSA", "Public Service Agency"),
    ("PSSG", "Public Safety and Solicitor General"),
    ("SDPR", "Social Development and Poverty Reduction"),
    ("TCA", "Tourism, Arts, Culture and Sport"),
    ("TRAN", "Transportation and Infrastructure"),
    ("WLRS", "Water, Land and Resource Stewardship"),
]
JAG_MINISTRIES = {"AG", "PSSG", "EMCR", "MAH"}

CPU = [(0.5, 1.5), (1, 2), (2, 4), (4, 8), (8, 16), (16, 32), (32, 64)]
MEMORY = [(2, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 128)]
STORAGE = [1, 2, 4, 16, 32, 64, 128, 256, 512]
SNAPSHOT = [5]


def _num(value: float) -> str:
    return f"{value:g}"


def quota_options() -> list[dict]:
    options = []
    for i, (req, lim) in enumerate(CPU):
        options.append(
            {
                "name": f"cpu-request-{_num(req)}-limit-{_num(lim)}",
                "kind": "cpu",
                "is_default": i == 0,
                "sort_order": i,
                "quotas": {"requests": req, "limits": lim},
            }
        )
    for i, (req, lim) in enumerate(MEMORY):
        options.append(
            {
                "name": f"memory-request-{req}-limit-{lim}",
                "kind": "memory",
                "is_default": i == 0,
                "sort_order": i,
                "quotas": {"requests": req, "limits": lim},
            }
        )
    for i, size in enumerate(STORAGE):
        options.append(
            {
                "name": f"storage-{size}",
                "kind": "storage",
                "is_default": i == 0,
                "sort_order": i,
                "quotas": {
                    "block": size,
                    "file": size,
                    "backup": size / 2,
                    "capacity": size,
                    "pvc_count": 60,
                },
            }
        )
    for i, count in enumerate(SNAPSHOT):
        options.append(
            {
                "name": f"snapshot-{count}",
                "kind": "snapshot",
                "is_default": i == 0,
                "sort_order": i,
                "quotas": {"count": count},
            }
        )
    return options
