from __future__ import annotations

from pixwave.exceptions import Conflict, NotFound


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "No such user"


class UserAlreadyExists(Conflict):
    code = "user_already_exists"
    title = "A user with that e-mail or document already exists"
