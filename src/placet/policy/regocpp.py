"""A thin ctypes binding to the rego-cpp C API (``rego_c.h``) in the library regopy ships.

Why not regopy's Python classes: its ``Output`` parses the engine's JSON rendering, which
does not escape strings, so a reason containing a quote either breaks the parse or, worse,
forges keys such as ``outcome``; and its ``Input`` conversion is slow. Here the input is
pushed node by node and the result is read node by node, so strings round-trip exactly.

A :class:`Session` (one interpreter and its own compiled bundle) is NOT safe to share
between threads: rego-cpp keeps the input on the interpreter. Use one per thread.
"""

from __future__ import annotations

import ctypes
import functools
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

from placet.policy.errors import PolicyError
from placet.policy.references import code_only

# Node kinds from rego_c.h (REGO_NODE_*).
_OBJECT_ITEM = 1007
_ARRAY, _SET, _OBJECT = 1004, 1005, 1006
_INT, _FLOAT, _STRING, _TRUE, _FALSE, _NULL, _UNDEFINED = 1008, 1009, 1010, 1011, 1012, 1013, 1014
_TERMS, _RESULTS = 1015, 1017
_ERROR, _ERROR_MESSAGE, _ERROR_CODE, _ERROR_SEQ = 1800, 1801, 1803, 1804

_LOG_NONE = 0
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_ERRORS = 5

_VP, _U32, _CP = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p
_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "regoNew": (_VP, []),
    "regoFree": (None, [_VP]),
    "regoSetLogLevel": (_U32, [_VP, _U32]),
    "regoAddModule": (_U32, [_VP, _CP, _CP]),
    "regoAddEntrypoint": (_U32, [_VP, _CP]),
    "regoBuild": (_VP, [_VP]),
    "regoBundleOk": (ctypes.c_bool, [_VP]),
    "regoBundleNode": (_VP, [_VP]),
    "regoFreeBundle": (None, [_VP]),
    "regoErrorSize": (_U32, [_VP]),
    "regoError": (_U32, [_VP, _CP, _U32]),
    "regoNewInput": (_VP, []),
    "regoFreeInput": (None, [_VP]),
    "regoInputInt": (_U32, [_VP, ctypes.c_int64]),
    "regoInputFloat": (_U32, [_VP, ctypes.c_double]),
    "regoInputString": (_U32, [_VP, _CP]),
    "regoInputBoolean": (_U32, [_VP, ctypes.c_bool]),
    "regoInputNull": (_U32, [_VP]),
    "regoInputObjectItem": (_U32, [_VP]),
    "regoInputObject": (_U32, [_VP, _U32]),
    "regoInputArray": (_U32, [_VP, _U32]),
    "regoInputSet": (_U32, [_VP, _U32]),
    "regoInputSize": (_U32, [_VP]),
    "regoSetInput": (_U32, [_VP, _VP]),
    "regoBundleQueryEntrypoint": (_VP, [_VP, _VP, _CP]),
    "regoOutputNode": (_VP, [_VP]),
    "regoFreeOutput": (None, [_VP]),
    "regoNodeType": (_U32, [_VP]),
    "regoNodeSize": (_U32, [_VP]),
    "regoNodeGet": (_VP, [_VP, _U32]),
    "regoNodeValueSize": (_U32, [_VP]),
    "regoNodeValue": (_U32, [_VP, _CP, _U32]),
}


# Calls that can take long (compiling, evaluating) release the GIL so other threads run
# meanwhile. Every other call takes about a microsecond; releasing and re-taking the GIL
# around each of those would let a busy thread delay an evaluation by milliseconds.
_RELEASE_GIL = frozenset({"regoAddModule", "regoBuild", "regoBundleQueryEntrypoint"})


@functools.cache
def library() -> Any:
    """Load rego-cpp from the regopy package once and declare the functions used here."""
    try:
        import regopy
    except ImportError as exc:  # pragma: no cover - regopy is a declared dependency
        raise PolicyError(f"the Rego engine is not installed (regopy): {exc}") from None
    folder = Path(regopy.__file__).parent
    candidates = sorted(folder.glob("*rego_shared.*"))
    candidates = [c for c in candidates if c.suffix in {".so", ".dylib", ".dll"}]
    if not candidates:  # pragma: no cover - depends on a broken installation
        raise PolicyError(f"the Rego engine library is missing from {folder}")
    releasing = ctypes.CDLL(str(candidates[0]))
    holding = ctypes.PyDLL(str(candidates[0]))
    functions: dict[str, Any] = {}
    for name, (restype, argtypes) in _PROTOTYPES.items():
        function = getattr(releasing if name in _RELEASE_GIL else holding, name)
        function.restype = restype
        function.argtypes = argtypes
        functions[name] = function
    return SimpleNamespace(**functions)


class Module(NamedTuple):
    """One Rego source file: its name in the bundle, its text and where it came from."""

    name: str
    source: str
    origin: str


class Answer(NamedTuple):
    """What a query gave: ``defined`` is False when the rule has no value for the input."""

    defined: bool
    value: Any


class _BadValue(Exception):
    """A value in the input document that the engine cannot represent."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []


class Session:
    """One rego-cpp interpreter with its own compiled bundle; one thread at a time."""

    def __init__(
        self, modules: Sequence[Module], entrypoint: str | Sequence[str], label: str
    ) -> None:
        self._lib = library()
        self._interpreter: int | None = None
        self._bundle: int | None = None
        names = [entrypoint] if isinstance(entrypoint, str) else list(entrypoint)
        self._entries = [name.encode() for name in names]
        self._entry = self._entries[0]
        self.label = label
        self._reader = _Reader(self._lib)
        self._compile(modules)

    def _compile(self, modules: Sequence[Module]) -> None:
        for module in modules:
            _refuse_unsupported(module)
        lib = self._lib
        interpreter = lib.regoNew()
        if not interpreter:  # pragma: no cover - out of memory
            raise PolicyError(f"{self.label}: the Rego engine could not start")
        self._interpreter = interpreter
        lib.regoSetLogLevel(interpreter, _LOG_NONE)
        for module in modules:
            if lib.regoAddModule(interpreter, module.name.encode(), module.source.encode()):
                raise PolicyError(_compile_message(_error_text(lib, interpreter), module))
        for entry in self._entries:
            lib.regoAddEntrypoint(interpreter, entry)
        bundle = lib.regoBuild(interpreter)
        if not bundle:
            raise PolicyError(f"{self.label}: {_error_text(lib, interpreter) or 'build failed'}")
        self._bundle = bundle
        if not lib.regoBundleOk(bundle):
            problems = _error_messages(lib, lib.regoBundleNode(bundle))
            raise PolicyError(f"{self.label}: the policy does not compile: {problems}")

    def query(self, document: Mapping[str, Any], entrypoint: str | None = None) -> Answer:
        """Evaluate the (first, or named) entrypoint with ``document`` as ``input``; engine
        errors raise PolicyError."""
        entry = self._entry if entrypoint is None else entrypoint.encode()
        lib = self._lib
        handle = lib.regoNewInput()
        try:
            try:
                status = _push(lib, handle, document)
            except _BadValue as exc:
                where = "input" + "".join(f"[{p}]" for p in exc.path)
                raise PolicyError(f"{where}: {exc.problem}") from None
            if status or lib.regoInputSize(handle) != 1:
                raise PolicyError(f"the policy engine rejected the input document (code {status})")
            if lib.regoSetInput(self._interpreter, handle):
                detail = _error_text(lib, self._interpreter)
                raise PolicyError(f"the policy engine rejected the input document: {detail}")
        finally:
            lib.regoFreeInput(handle)
        output = lib.regoBundleQueryEntrypoint(self._interpreter, self._bundle, entry)
        if not output:
            detail = _error_text(lib, self._interpreter)
            raise PolicyError(f"{self.label}: evaluation failed: {detail}")
        try:
            return self._reader.answer(lib.regoOutputNode(output), self.label)
        finally:
            lib.regoFreeOutput(output)

    def __del__(self) -> None:
        lib = getattr(self, "_lib", None)
        if lib is None:
            return
        if self._bundle:
            lib.regoFreeBundle(self._bundle)
            self._bundle = None
        if self._interpreter:
            lib.regoFree(self._interpreter)
            self._interpreter = None


# rego-cpp (as shipped in regopy) aborts the whole process, uncatchably, when a rule that
# calls a builtin is evaluated under ``with input as <value>`` (the whole input). Replacing
# parts of the input (``with input.proposal as {...}``) works, so refuse the form up front.
_WITH_WHOLE_INPUT = re.compile(r"(?<![A-Za-z0-9_.])with\s+input\s+as(?![A-Za-z0-9_])")


def _refuse_unsupported(module: Module) -> None:
    code = code_only(module.source)
    match = _WITH_WHOLE_INPUT.search(code)
    if match is not None:
        line = code.count("\n", 0, match.start()) + 1
        raise PolicyError(
            f"{module.origin}:{line}: `with input as ...` (replacing the whole input) is not "
            "supported by placet's Rego engine; replace its parts instead, e.g. "
            "`with input.proposal as {...} with input.assessment as {...}`"
        )


# ---- input: push a JSON document onto rego-cpp's input stack -------------------------


def _text_bytes(text: str) -> bytes:
    # rego-cpp reads a string by stripping one pair of surrounding quotes, if there is one.
    # Plain strings go in as they are (its builtins expect that); a string that itself
    # starts and ends with a quote gets one extra pair, so it too round-trips exactly.
    if "\x00" in text:
        raise _BadValue("a string contains a NUL character, which the engine cannot hold")
    try:
        data = text.encode()
    except UnicodeEncodeError:
        raise _BadValue("a string is not valid Unicode") from None
    if len(data) >= 2 and data[0] == 34 and data[-1] == 34:  # 34 is '"'
        return b'"' + data + b'"'
    return data


def _push(lib: Any, handle: int, value: Any) -> int:
    """Push ``value`` and return the OR of the engine's status codes (0 when all went well)."""
    if isinstance(value, str):
        return int(lib.regoInputString(handle, _text_bytes(value)))
    if isinstance(value, bool):
        return int(lib.regoInputBoolean(handle, value))
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _BadValue("an integer does not fit in 64 bits")
        return int(lib.regoInputInt(handle, value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _BadValue("a number is not finite")
        return int(lib.regoInputFloat(handle, value))
    if value is None:
        return int(lib.regoInputNull(handle))
    status = 0
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise _BadValue(f"an object key is a {type(key).__name__}, not a string")
            status |= lib.regoInputString(handle, _text_bytes(key))
            try:
                status |= _push(lib, handle, item)
            except _BadValue as exc:
                exc.path.insert(0, repr(key))
                raise
            status |= lib.regoInputObjectItem(handle)
        return status | int(lib.regoInputObject(handle, len(value)))
    if isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            try:
                status |= _push(lib, handle, item)
            except _BadValue as exc:
                exc.path.insert(0, str(index))
                raise
        if isinstance(value, set | frozenset):
            return status | int(lib.regoInputSet(handle, len(value)))
        return status | int(lib.regoInputArray(handle, len(value)))
    raise _BadValue(f"a {type(value).__name__} is not a JSON value")


# ---- output: read the result tree -----------------------------------------------------


def _text(lib: Any, node: int) -> str:
    size = lib.regoNodeValueSize(node)
    buffer = ctypes.create_string_buffer(size)
    lib.regoNodeValue(node, buffer, size)
    return buffer.raw[: size - 1].decode(errors="replace")


def _children(lib: Any, node: int) -> list[int]:
    return [lib.regoNodeGet(node, i) for i in range(lib.regoNodeSize(node))]


class _Unreadable(Exception):
    """A result node that has no JSON meaning (an error or undefined inside a value)."""


class _Reader:
    """Reads result nodes into Python values with one reusable text buffer (one thread)."""

    def __init__(self, lib: Any) -> None:
        self._lib = lib
        self._type = lib.regoNodeType
        self._size = lib.regoNodeSize
        self._get = lib.regoNodeGet
        self._capacity = 1024
        self._buffer = ctypes.create_string_buffer(self._capacity)

    def text(self, node: int) -> str:
        """The node's text (a scalar's literal form, or an error's message)."""
        if self._lib.regoNodeValue(node, self._buffer, self._capacity):
            self._capacity = max(self._lib.regoNodeValueSize(node), 2 * self._capacity)
            self._buffer = ctypes.create_string_buffer(self._capacity)
            self._lib.regoNodeValue(node, self._buffer, self._capacity)
        return self._buffer.value.decode(errors="replace")

    def value(self, node: int) -> Any:
        """The JSON value at ``node``; a set reads as an array, sorted when it can be."""
        kind = self._type(node)
        if kind == _STRING:
            text = self.text(node)
            # rego-cpp keeps some strings with their surrounding quotes and reads every
            # string by stripping one pair; do the same.
            if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
                return text[1:-1]
            return text
        if kind == _INT:
            return int(self.text(node))
        if kind == _FLOAT:
            return float(self.text(node))
        if kind == _TRUE:
            return True
        if kind == _FALSE:
            return False
        if kind == _NULL:
            return None
        get = self._get
        if kind == _ARRAY:
            return [self.value(get(node, i)) for i in range(self._size(node))]
        if kind == _SET:
            members = [self.value(get(node, i)) for i in range(self._size(node))]
            try:  # a set has no order; sort it so the same set always reads the same
                return sorted(members)
            except TypeError:
                return members
        if kind == _OBJECT:
            result: dict[Any, Any] = {}
            for i in range(self._size(node)):
                item = get(node, i)
                if self._type(item) != _OBJECT_ITEM:
                    raise _Unreadable("an object holds something that is not a key and a value")
                key = self.value(get(item, 0))
                if isinstance(key, list | dict):
                    raise _Unreadable("an object key is an array or an object")
                result[key] = self.value(get(item, 1))
            return result
        raise _Unreadable(f"the result holds a value of engine kind {kind}")

    def answer(self, root: int, label: str) -> Answer:
        """The single value a query gave, or undefined; engine errors raise PolicyError."""
        lib = self._lib
        kind = self._type(root)
        if kind in (_ERROR, _ERROR_SEQ):
            raise PolicyError(f"{label}: evaluation failed: {_error_messages(lib, root)}")
        if kind == _UNDEFINED:
            return Answer(False, None)
        if kind != _RESULTS:
            raise PolicyError(f"{label}: the engine returned an unexpected result (kind {kind})")
        count = self._size(root)
        if count == 0:
            return Answer(False, None)
        if count > 1:
            raise PolicyError(f"{label}: the query gave {count} results instead of one")
        result = self._get(root, 0)
        terms = [c for c in _children(lib, result) if self._type(c) == _TERMS]
        values = _children(lib, terms[0]) if terms else []
        if len(values) != 1:
            raise PolicyError(f"{label}: the query gave {len(values)} values instead of one")
        value_kind = self._type(values[0])
        if value_kind == _UNDEFINED:
            return Answer(False, None)
        if value_kind in (_ERROR, _ERROR_SEQ):
            raise PolicyError(f"{label}: evaluation failed: {_error_messages(lib, values[0])}")
        try:
            return Answer(True, self.value(values[0]))
        except _Unreadable as exc:
            raise PolicyError(f"{label}: {exc}") from None
        except ValueError as exc:
            raise PolicyError(f"{label}: the result holds an unreadable number: {exc}") from None


# ---- errors ---------------------------------------------------------------------------


def _error_text(lib: Any, interpreter: int | None) -> str:
    size = lib.regoErrorSize(interpreter)
    buffer = ctypes.create_string_buffer(size)
    lib.regoError(interpreter, buffer, size)
    return buffer.raw[: size - 1].decode(errors="replace").strip()


def _error_messages(lib: Any, node: int) -> str:
    """The messages (and codes) of an error node or error sequence, joined for a user."""
    errors = [node] if lib.regoNodeType(node) == _ERROR else _children(lib, node)
    messages: list[str] = []
    for error in errors:
        parts = {lib.regoNodeType(c): _text(lib, c) for c in _children(lib, error)}
        message = parts.get(_ERROR_MESSAGE, "").strip() or "unknown error"
        code = parts.get(_ERROR_CODE, "").strip()
        messages.append(f"{message} ({code})" if code else message)
    if not messages:
        return "unknown error"
    shown = list(dict.fromkeys(messages))[:_MAX_ERRORS]
    return "; ".join(shown)


_ERROR_HEAD = re.compile(rb"\(error (?:(\d+):)?")
_ERROR_SPAN = re.compile(rb"\|(\d+)\|(\d+)")
_MESSAGE_HEAD = re.compile(rb"\(errormsg (\d+):")


def _parse_error_text(text: str) -> list[tuple[str | None, int | None, str]]:
    """Read rego-cpp's error sequence text into (module name, byte offset, message) triples."""
    data = text.encode()
    found: list[tuple[str | None, int | None, str]] = []
    position = 0
    while (head := _ERROR_HEAD.search(data, position)) is not None:
        name: str | None = None
        offset: int | None = None
        cursor = head.end()
        if head.group(1) is not None:
            length = int(head.group(1))
            name = data[cursor : cursor + length].decode(errors="replace")
            cursor += length
        if (span := _ERROR_SPAN.match(data, cursor)) is not None:
            offset = int(span.group(1))
            cursor = span.end()
        message_head = _MESSAGE_HEAD.search(data, cursor)
        if message_head is None:
            break
        length = int(message_head.group(1))
        start = message_head.end()
        found.append((name, offset, data[start : start + length].decode(errors="replace")))
        position = start + length
    return found


def _compile_message(text: str, module: Module) -> str:
    """A user's message for a module that does not parse: ``file:line:column: problem``."""
    source = module.source.encode()
    problems: list[str] = []
    for name, offset, message in _parse_error_text(text):
        where = module.origin if name in (None, module.name) else name
        if offset is not None and 0 <= offset <= len(source):
            line = source.count(b"\n", 0, offset) + 1
            line_start = source.rfind(b"\n", 0, offset) + 1
            column = len(source[line_start:offset].decode(errors="replace")) + 1
            where = f"{where}:{line}:{column}"
        if message == "Invalid file":
            message = "not a Rego module (every file needs a package declaration)"
        problems.append(f"{where}: {message}")
    if not problems:
        detail = text or "the engine gave no detail"
        return f"{module.origin}: the policy does not parse: {detail}"
    return "; ".join(list(dict.fromkeys(problems))[:_MAX_ERRORS])
