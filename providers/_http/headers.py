"""What httpx or h11 would refuse to send, said without quoting it: a request header value
or URL may hold a credential."""

from __future__ import annotations

__all__ = ["UNSENDABLE", "header_problem", "unquoted"]

UNSENDABLE = (
    "the request is not valid HTTP, most likely because a header value (a credential) "
    "holds a line break, another control character or a non-ASCII character; the value is "
    "not shown: check the target's credentials"
)


def header_problem(name: str, value: str) -> str | None:
    """Why ``value`` cannot be sent as the ``name`` header, never quoting it (it is most
    likely a credential); None when it can."""
    if any(ch in "\r\n" for ch in value):
        what = "a line break"
    elif any((ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F for ch in value):
        what = "a control character"
    elif not value.isascii():
        what = "a non-ASCII character"
    elif value != value.strip(" \t"):
        what = "spaces at its start or end"
    else:
        return None
    return (
        f"the {name} header would hold {what}, which HTTP does not allow in a header "
        "(the value is not shown): check the target's credentials"
    )


def unquoted(error: Exception) -> str:
    """httpx's reason for refusing a URL, without the part that quotes the URL."""
    return str(error).split(",")[0].split(":")[0].strip() or type(error).__name__
