from __future__ import annotations

from pixwave.exceptions import Conflict, NotFound


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "No such user"


class UserAlreadyExists(Conflict):
    code = "user_already_exists"
    title = "A user with that e-mail or document already exists"


class TokenNotFound(NotFound):
    code = "token_not_found"
    title = "No such token"


class CannotDeactivateSelf(Conflict):
    code = "cannot_deactivate_self"
    title = "An operator cannot deactivate their own account"
