internal import CMPI

/// A failed MPI call: the return code, the function that returned it, and MPI's text for it.
///
/// The world communicator is set to return errors (`MPI_ERRORS_RETURN`) rather than abort,
/// so that they arrive here; after one, the ranks may no longer agree on what comes next,
/// and ``Communicator/abort(message:exitCode:)`` is usually the way out.
public struct MPIError: Error, Equatable, CustomStringConvertible {
    /// The code the call returned (an `MPI_ERR_*` value).
    public let code: Int32
    /// The MPI function, such as `"MPI_Allreduce"`.
    public let function: String
    /// MPI's description of the code, or of the problem.
    public let message: String

    init(code: Int32, function: String, message: String) {
        self.code = code
        self.function = function
        self.message = message
    }

    /// The error for `code` as returned by `function`, with the text of `MPI_Error_string`
    /// while MPI is running (Open MPI aborts the process if it is called before `MPI_Init`).
    init(code: Int32, function: String) {
        var message = "unknown error"
        var initialized: Int32 = 0, finalized: Int32 = 0
        if MPI_Initialized(&initialized) == cmpi_success(), MPI_Finalized(&finalized) == cmpi_success(),
           initialized != 0, finalized == 0 {
            var text = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
            var length: Int32 = 0
            if MPI_Error_string(code, &text, &length) == cmpi_success() {
                message = String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        self.init(code: code, function: function, message: message)
    }

    public var description: String { "\(function) failed: \(message) (MPI error \(code))" }
}

/// Throws the ``MPIError`` for `code` unless it is `MPI_SUCCESS`.
@inline(__always)
func check(_ code: Int32, _ function: String) throws {
    if code != cmpi_success() { throw MPIError(code: code, function: function) }
}
