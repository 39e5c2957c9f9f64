"""Exceptions users see: each names the file, line or adapter at fault."""


class FiqaBenchError(Exception):
    """Base class; the CLI prints these as one clear message instead of a traceback."""


class UnknownNameError(FiqaBenchError, KeyError):
    """A method, backbone or protocol name that is not registered (message carries 'did you mean')."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class PluginLoadError(FiqaBenchError):
    """An entry point that is registered but fails to import."""


class ImageError(FiqaBenchError):
    """An image that is missing, unreadable or corrupt."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class NoFaceError(ImageError):
    """No face was detected in an image that needs one."""

    def __init__(self, path, reason: str = "no face detected"):
        super().__init__(path, reason)


class ProtocolFormatError(FiqaBenchError):
    """A malformed protocol file; carries the file and 1-based line number."""

    def __init__(self, path, line: int | None, reason: str):
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {reason}")


class ChecksumError(FiqaBenchError):
    """A downloaded or local weights/data file whose sha256 is not the pinned one."""


class DownloadError(FiqaBenchError):
    """A download that could not be completed (no network, HTTP error, interrupted transfer)."""


class OptionError(FiqaBenchError):
    """A constructor option (``--method-option KEY=VALUE``) that the adapter does not take or rejects; the
    message names the adapter and the option."""


class AdapterError(FiqaBenchError):
    """A quality method or backbone that raised, or returned NaN/inf or the wrong shape, at run time."""


class MissingDependencyError(FiqaBenchError, ImportError):
    """An optional package is needed; the message says which extra installs it."""


class DeviceError(FiqaBenchError):
    """``--device cuda`` where no GPU or no CUDA provider is present (checked before any work)."""


class CapabilityError(FiqaBenchError):
    """A quality method that needs a backbone capability (stochastic passes, layer access, raw features) the run's
    backbone does not declare; the message names both."""


class UnsafePathError(FiqaBenchError):
    """A file name from a protocol that would be read outside the benchmark folder (absolute, ``..``, a symbolic
    link leaving the folder): refused, never skipped, since it is not a bad image but a wrong benchmark."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class FileAccessError(FiqaBenchError, OSError):
    """A file or folder fiqa-bench must write or read and cannot (permissions, full disk, read-only mount): one
    line naming the path instead of a traceback. Still an ``OSError`` for callers that catch those."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        FiqaBenchError.__init__(self, f"{path}: {reason}")

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class AdapterInterrupt(KeyboardInterrupt):
    """Ctrl-C (or a ``KeyboardInterrupt`` raised by a plugin) while an adapter ran: still an interruption (the CLI
    exits with 130), but it says which adapter was running."""


class BadResultsFile(FiqaBenchError):
    """A results file that cannot be used: not JSON, or a field of the wrong type or range. ``problem`` names the
    field (``metrics.tpr_at_fpr['1e-3'] must be a fraction in [0, 1] or null, not a string ('abc')``)."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")
