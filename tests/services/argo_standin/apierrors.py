"""Errors as the Argo Server's grpc-gateway (v1.16, proto error handler) sends them.

The body is the gRPC status marshalled to JSON, ``{"code": N, "message": "..."}``, with the
HTTP status grpc-gateway derives from the code. Argo turns Kubernetes API errors into codes
by their HTTP status (server/utils/errors.go), so the messages below are Kubernetes' own.
"""

from __future__ import annotations

INVALID_ARGUMENT = 3
NOT_FOUND = 5
ALREADY_EXISTS = 6
PERMISSION_DENIED = 7
INTERNAL = 13
UNAUTHENTICATED = 16

#: grpc-gateway's runtime.HTTPStatusFromCode for the codes the stand-in sends.
HTTP_STATUS = {INVALID_ARGUMENT: 400, NOT_FOUND: 404, ALREADY_EXISTS: 409,
               PERMISSION_DENIED: 403, INTERNAL: 500, UNAUTHENTICATED: 401}

#: Argo's gatekeeper, when no Authorization header (or no known scheme) is given.
TOKEN_NOT_VALID = "token not valid. see https://argo-workflows.readthedocs.io/en/latest/faq/"
#: Kubernetes' answer to a bearer token it does not know (client auth mode).
UNAUTHORIZED = "Unauthorized"

RESOURCE = "workflows.argoproj.io"


class ApiError(Exception):
    """A gRPC status error, answered as grpc-gateway does."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)

    def body(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


def not_found(name: str) -> ApiError:
    return ApiError(NOT_FOUND, f'{RESOURCE} "{name}" not found')


def already_exists(name: str) -> ApiError:
    return ApiError(ALREADY_EXISTS, f'{RESOURCE} "{name}" already exists')


def forbidden(user: str, verb: str, namespace: str, name: str = "",
              resource: str = "workflows", group: str = "argoproj.io") -> ApiError:
    """Kubernetes RBAC's refusal (apiserver's forbidden message), as Argo passes it on."""
    what = f"{resource}.{group}" if group else resource
    if name:
        what += f' "{name}"'
    return ApiError(PERMISSION_DENIED,
                    f'{what} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
                    f'in API group "{group}" in the namespace "{namespace}"')


def list_forbidden(namespace: str) -> ApiError:
    """Argo's own check before listing (server/workflow/workflow_server.go ListWorkflows)."""
    return ApiError(PERMISSION_DENIED,
                    f'Permission denied, you are not allowed to list workflows in namespace '
                    f'"{namespace}". Maybe you want to specify a namespace with query parameter '
                    f'`.namespace={namespace}`?')
