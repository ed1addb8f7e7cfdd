// FileFormats module
