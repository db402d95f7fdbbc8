"""The one lazy-loader contract every model wrapper follows (and the infer stage's per-item inputs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from ..infra.errors import UserError

T = TypeVar("T")


class Lazy(Generic[T]):
    """A value made on first `get()` and kept for the process: a model that a fully up-to-date run never loads, loaded
    once however many items use it.

    A `make` that fails is not tried again: later `get()`s raise at once with the first failure (a 20 GB load is not
    repeated for every item). `translate` may turn the first exception into a clearer one (a UserError with advice);
    only its message is kept, so the exception's frames do not keep a half-made model alive."""

    def __init__(self, make: Callable[[], T], what: str,
                 translate: Callable[[Exception], Exception | None] | None = None):
        self._make, self.what, self._translate = make, what, translate
        self._value: T | None = None
        self._failure: tuple[bool, str] | None = None  # (a UserError?, message)
        self.loads = 0

    @property
    def loaded(self) -> bool:
        return self._value is not None

    def get(self) -> T:
        if self._failure is not None:
            user_error, message = self._failure
            raise (UserError if user_error else RuntimeError)(
                f"not run: loading {self.what} failed for an earlier item of this process: {message}")
        if self._value is None:
            try:
                self._value = self._make()
            except Exception as exc:
                better = self._translate(exc) if self._translate is not None else None
                if better is not None:
                    self._failure = (isinstance(better, UserError), str(better))
                    raise better from None
                self._failure = ((True, str(exc)) if isinstance(exc, UserError)
                                 else (False, f"{type(exc).__name__}: {exc}"))
                raise
            self.loads += 1
        return self._value

    def drop(self) -> None:
        """Forget the value (a later `get()` makes it again); the caller frees what it held."""
        self._value = None
