"""The models a run measures: the registry of reference architectures, the offline data sets, the user's weights
and data folders, the suite's own training of a reference, and the uncompressed `Reference` each cell compares
against."""
