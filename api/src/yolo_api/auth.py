"""Who is calling and what they may do: bearer tokens, checked once and then answered from a cache.

Three modes, chosen by ``YOLO_API_AUTH``:

* ``kubernetes`` (default with the Kubernetes backend): the token is reviewed by the cluster
  (TokenReview), then each action is a SubjectAccessReview on ``yolotrainings`` (``yolosweeps`` for the
  ``/sweeps`` routes) in the object's namespace, so a user has exactly the rights ``kubectl`` gives them.
  Prometheus scrapes ``/metrics`` with the non-resource rule ``get /metrics``, as it does for kubelets
  and kube-rbac-proxy.
* ``token`` (default with the local backend): one static token from ``YOLO_API_AUTH_TOKEN``, a file,
  or generated into the state directory (mode 0600) on first start. Its holder may do everything.
* ``none``: no checks; only when asked for explicitly, and logged as a warning at start.

Reviews are cached (allowed for ``auth_cache_seconds``, denied for a tenth of it) under a hash of the
token: a poller costs the API server one review per cache period, and no token is ever kept or logged.
"""

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from starlette.requests import HTTPConnection

from yolo_api.errors import ApiError
from yolo_crd.names import PLURAL, SWEEP_PLURAL

log = logging.getLogger(__name__)

#: Actions, named by the Kubernetes verb that guards them on the resource (``yolotrainings`` unless said).
GET, LIST, CREATE, DELETE = "get", "list", "create", "delete"
METRICS = "metrics"  # the non-resource URL /metrics
#: The resources whose verbs guard the routes: trainings (the default), and sweeps for ``/sweeps``.
TRAININGS, SWEEPS = PLURAL, SWEEP_PLURAL


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``key`` is a hash of the token (a cache key); the token itself is not kept."""

    name: str
    key: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict, compare=False)


ANONYMOUS = Principal(name="system:anonymous", key="")


class Authenticator(Protocol):
    """The one thing routes ask about callers."""

    async def authenticate(self, token: str | None) -> Principal | None:
        """The caller behind a bearer token (None: not authenticated)."""

    async def allowed(self, who: Principal, action: str, namespace: str | None, resource: str = TRAININGS) -> bool:
        """Whether ``who`` may do ``action`` on ``resource`` (trainings unless said) in ``namespace`` (None: all
        namespaces)."""


def token_key(token: str) -> str:
    """A stable, non-reversible cache key for a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(connection: HTTPConnection) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def unauthenticated() -> ApiError:
    """401 with a ``WWW-Authenticate`` challenge (the error never echoes the token)."""
    return ApiError(401, "unauthenticated", {}, headers={"WWW-Authenticate": 'Bearer realm="yolo-training-api"'})


def forbidden(action: str, namespace: str | None, resource: str = TRAININGS) -> ApiError:
    """403 naming the missing right, so that a user knows what to ask their cluster admin for."""
    where = f" in namespace {namespace!r}" if namespace else ""
    return ApiError(403, "forbidden", {"verb": action, "resource": resource, "namespace": namespace},
                    detail=f"you may not {action} {resource}{where}")


class NoAuth:
    """``auth=none``: everyone is anonymous and may do everything."""

    async def authenticate(self, token: str | None) -> Principal | None:
        """Always the anonymous principal."""
        return ANONYMOUS

    async def allowed(self, who: Principal, action: str, namespace: str | None, resource: str = TRAININGS) -> bool:
        """Always allowed."""
        return True


class StaticToken:
    """``auth=token``: one shared secret, compared in constant time; its holder may do everything."""

    def __init__(self, token: str) -> None:
        if len(token) < 16:
            raise ValueError("the API token must be at least 16 characters long")
        self._token = token.encode()
        self._principal = Principal(name="token-holder", key=token_key(token))

    async def authenticate(self, token: str | None) -> Principal | None:
        """The token holder, or None for any other token."""
        if token is not None and hmac.compare_digest(token.encode(), self._token):
            return self._principal
        return None

    async def allowed(self, who: Principal, action: str, namespace: str | None, resource: str = TRAININGS) -> bool:
        """The token holder may do everything."""
        return who.key == self._principal.key


def load_or_create_token(path: Path) -> str:
    """Read the token in ``path``, or write a new random one there readable by its owner only."""
    if path.exists():
        token = path.read_text().strip()
        if not token:
            raise ValueError(f"the API token file {path} is empty")
        return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    log.info("generated an API token in %s (yoloctl reads it from the default state directory by itself; "
             "elsewhere: YOLO_API_TOKEN_FILE=%s yoloctl ...)", path, path)
    return token
