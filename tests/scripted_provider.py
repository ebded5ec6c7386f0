"""A small OpenID Connect provider whose keys and answers a test scripts.

oidc-provider-mock (tests/conftest.py) is a faithful provider, but it makes one RSA key at start
and always answers well. This one serves discovery, an authorization endpoint that signs the
person in at once, a token endpoint (authorization code with PKCE, refresh), userinfo and a
JWKS over real HTTP, and lets a test rotate its signing key (under the same key id, too), spoil
the next ID token (wrong audience, expired, unsigned...), answer the token endpoint badly,
disable a person, and mint back-channel logout tokens with the keys it serves.
"""

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse

from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.conftest import free_port

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict, claims: dict) -> str:
    """A JWT with ``alg: none``: no library signs one willingly."""
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}."


class ScriptedProvider:
    def __init__(self, client_id: str = "registry", client_secret: str = "registry-secret"):
        self.client_id = client_id
        self.client_secret = client_secret
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "signing-1"})
        self.people: dict[str, dict] = {}
        self.disabled: set[str] = set()
        self.hits: dict[str, int] = {}  # path -> requests answered
        self.reset()
        self._server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        """As after start: what the next sign-in does is not scripted."""
        self.person: dict | None = None  # who the authorization endpoint signs in
        self.authorize_error: tuple[str, str] | None = None  # (error, error_description)
        self.token_answer: tuple[int, str] | None = None  # the token endpoint's next answer
        self.id_token_claims: dict = {}  # changes to the next ID token's claims
        self.id_token_header: dict = {}  # changes to its header
        self.sign_with = None  # another key to sign the next ID token with
        self.unsigned_id_token = False
        self.id_token_on_refresh = False
        self.issue_refresh_tokens = True
        self.advertised_algorithms = ["RS256"]
        self.token_endpoint = None  # another token endpoint to advertise
        self.refresh_gate: threading.Event | None = None  # refresh grants wait for it
        self.codes: dict[str, dict] = {}
        self.last_id_token: str | None = None
        self.grants: dict[str, dict] = {}  # refresh token -> {"sub", "sid"}
        self.access: dict[str, str] = {}  # access token -> sub
        self.hits.clear()

    # What a test does with it.

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def add(self, person: dict) -> None:
        self.people[person["sub"]] = dict(person)

    def rotate_key(self, same_kid: bool = True) -> RSAKey:
        """Sign from now on with a new key, published instead of the old one."""
        kid = self.key.kid if same_kid else f"signing-{secrets.token_hex(4)}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": kid})
        return self.key

    def disable(self, sub: str) -> None:
        """The person's account is turned off: their grants and access tokens stop working."""
        self.disabled.add(sub)

    def sign(self, claims: dict, header: dict | None = None, key=None) -> str:
        key = key or self.key
        header = {"alg": "RS256", "kid": key.kid, **(header or {})}
        header = {k: v for k, v in header.items() if v is not None}
        algorithms = [header["alg"]]
        return jwt.encode(header, claims, key, algorithms=algorithms)

    def logout_token(self, header: dict | None = None, key=None, **claims) -> str:
        """A back-channel logout token for this client, signed with the key the JWKS serves."""
        now = int(time.time())
        body = {
            "iss": self.url,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(12),
            "events": {BACKCHANNEL_EVENT: {}},
            **claims,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return self.sign(body, {"typ": "logout+jwt", **(header or {})}, key)

    def hmac_key(self) -> OctKey:
        return OctKey.import_key(self.client_secret.encode())

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    # The provider's side.

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        handler = {
            "/.well-known/openid-configuration": self._discovery,
            "/authorize": self._authorize,
            "/token": self._token,
            "/userinfo": self._userinfo,
            "/jwks": self._jwks,
        }.get(request.path)
        response = handler(request) if handler else Response("not here", 404)
        return response(environ, start_response)

    @staticmethod
    def _json(body, status: int = 200) -> Response:
        return Response(json.dumps(body), status, content_type="application/json")

    def _discovery(self, request) -> Response:
        return self._json(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": self.token_endpoint or f"{self.url}/token",
                "userinfo_endpoint": f"{self.url}/userinfo",
                "jwks_uri": f"{self.url}/jwks",
                "end_session_endpoint": f"{self.url}/end-session",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": self.advertised_algorithms,
                "backchannel_logout_supported": True,
                "backchannel_logout_session_supported": True,
            }
        )

    def _jwks(self, request) -> Response:
        return self._json(KeySet([self.key]).as_dict(private=False))

    def _authorize(self, request) -> Response:
        args = request.args
        redirect_uri = args["redirect_uri"]
        if self.authorize_error:
            error, description = self.authorize_error
            query = {"error": error, "error_description": description, "state": args["state"]}
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "sub": self.person["sub"],
                "nonce": args.get("nonce"),
                "challenge": args["code_challenge"],
                "redirect_uri": redirect_uri,
                "sid": secrets.token_urlsafe(8),
            }
            query = {"code": code, "state": args["state"]}
        location = f"{redirect_uri}?{urllib.parse.urlencode(query)}"
        return Response("", 302, headers={"Location": location})

    def _client_authenticated(self, request) -> bool:
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            return (auth.username, auth.password) == (self.client_id, self.client_secret)
        form = request.form
        return (form.get("client_id"), form.get("client_secret")) == (
            self.client_id,
            self.client_secret,
        )

    def _token(self, request) -> Response:
        if self.token_answer is not None:
            status, body = self.token_answer
            return Response(body, status, content_type="application/json")
        if not self._client_authenticated(request):
            return self._json({"error": "invalid_client"}, 401)
        form = request.form
        if form.get("grant_type") == "authorization_code":
            grant = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            challenge = b64url(hashlib.sha256(verifier.encode()).digest())
            if (
                grant is None
                or grant["challenge"] != challenge
                or grant["redirect_uri"] != form.get("redirect_uri")
            ):
                return self._json({"error": "invalid_grant"}, 400)
            return self._json(self._tokens(grant, with_id_token=True))
        if form.get("grant_type") == "refresh_token":
            if self.refresh_gate is not None:
                self.refresh_gate.wait(10)
            # Refresh tokens are used once (rotated), as Keycloak's "revoke refresh token" does.
            grant = self.grants.pop(form.get("refresh_token", ""), None)
            if grant is None or grant["sub"] in self.disabled:
                return self._json(
                    {"error": "invalid_grant", "error_description": "Session not active"}, 400
                )
            return self._json(self._tokens(grant, with_id_token=self.id_token_on_refresh))
        return self._json({"error": "unsupported_grant_type"}, 400)

    def _tokens(self, grant: dict, with_id_token: bool) -> dict:
        access_token = secrets.token_urlsafe(24)
        self.access[access_token] = grant["sub"]
        answer = {"access_token": access_token, "token_type": "Bearer", "expires_in": 300}
        if self.issue_refresh_tokens:
            refresh_token = secrets.token_urlsafe(24)
            self.grants[refresh_token] = {"sub": grant["sub"], "sid": grant["sid"]}
            answer["refresh_token"] = refresh_token
        if with_id_token:
            answer["id_token"] = self._id_token(grant)
        return answer

    def _id_token(self, grant: dict) -> str:
        now = int(time.time())
        claims = {
            **self.people[grant["sub"]],
            "iss": self.url,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "sid": grant["sid"],
        }
        if grant.get("nonce"):
            claims["nonce"] = grant["nonce"]
        claims.update(self.id_token_claims)
        claims = {k: v for k, v in claims.items() if v is not None}
        if self.unsigned_id_token:
            self.last_id_token = unsigned({"alg": "none", **self.id_token_header}, claims)
        else:
            self.last_id_token = self.sign(claims, self.id_token_header, self.sign_with)
        return self.last_id_token

    def _userinfo(self, request) -> Response:
        auth = request.headers.get("Authorization", "")
        sub = self.access.get(auth.removeprefix("Bearer ").strip())
        if sub is None or sub in self.disabled:
            return self._json({"error": "invalid_token"}, 401)
        return self._json(self.people[sub])
