import ArgumentParser
import Foundation
import PipelineInception

/// A path as given, made absolute against the current folder (job specs are read by
/// processes started elsewhere).
public func absolute(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

extension InceptionPreprocessing: ExpressibleByArgument {}
