// Open MPI's handles and constants are macros over the addresses of predefined globals
// (`#define MPI_COMM_WORLD ((MPI_Comm) &ompi_mpi_comm_world)`), which Swift cannot import.
// Each accessor below returns one of them, marked _Nonnull where it is a handle so that Swift
// sees a plain value, not an optional. The Distributed module is their only user.
#ifndef GANTRY_CMPI_SHIM_H
#define GANTRY_CMPI_SHIM_H

#include <mpi.h>

// Communicators and error handlers.
static inline MPI_Comm _Nonnull cmpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Errhandler _Nonnull cmpi_errors_return(void) { return MPI_ERRORS_RETURN; }

// Datatypes.
static inline MPI_Datatype _Nonnull cmpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype _Nonnull cmpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype _Nonnull cmpi_int(void) { return MPI_INT; }
static inline MPI_Datatype _Nonnull cmpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype _Nonnull cmpi_byte(void) { return MPI_BYTE; }

// Reduction operations.
static inline MPI_Op _Nonnull cmpi_sum(void) { return MPI_SUM; }
static inline MPI_Op _Nonnull cmpi_max(void) { return MPI_MAX; }
static inline MPI_Op _Nonnull cmpi_min(void) { return MPI_MIN; }

// Sentinels.
static inline void *_Nonnull cmpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Request _Nonnull cmpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *_Nullable cmpi_status_ignore(void) { return MPI_STATUS_IGNORE; }

// Integer constants (some are enumerators Swift could import; kept here so all come from one place).
static inline int cmpi_success(void) { return MPI_SUCCESS; }
static inline int cmpi_err_other(void) { return MPI_ERR_OTHER; }
static inline int cmpi_thread_single(void) { return MPI_THREAD_SINGLE; }
static inline int cmpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int cmpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int cmpi_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }
static inline int cmpi_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }
static inline int cmpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }

#endif
