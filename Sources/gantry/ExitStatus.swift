import Datasets
import Distributed
import Evaluation
import FileFormats
import GAN

/// The exit status of a failure: 2 for bad input (flags, data files, checkpoints, an output
/// folder that cannot be written), 1 for a failure at run time (a diverged run, a stalled or
/// lost rank, a disk that fills up). A stop signal is 128 + its number (130, 143).
func exitStatus(for error: Error) -> Int32 {
    switch error {
    case let error as DataLoadError:
        return exitStatus(for: error.underlying)
    case let error as CheckpointError:
        if case .nonFinite = error { return 1 }
        return 2
    case is DatasetError, is SafetensorsError, is ConfigurationError, is RunRecordError:
        return 2
    case let error as EvaluationError:
        switch error {
        case .eigensolverFailed, .imageBufferSize: return 1
        default: return 2
        }
    case let error as FileError:
        if case .writeFailed = error { return 1 }
        return 2
    case let error as OutputError:
        if case .cannotRemove = error { return 1 }
        return 2
    case let error as TrainingError:
        switch error {
        case .imageSizeMismatch, .alreadyFinished: return 2
        default: return 1
        }
    default:
        return 1
    }
}
