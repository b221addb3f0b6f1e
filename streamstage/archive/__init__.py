"""Staging archives of recorded nights: many files, in parallel on a local process pool or a Dask cluster,
each into its own night folder, with a summary of the batch. One recording staged alone goes through the
very same :func:`~streamstage.archive.night.write_night`, so a batch stages each file exactly as it would be
staged on its own."""

from streamstage.archive.batch import stage_archive, stage_files
from streamstage.archive.night import FileJob, FileResult, StagingOptions, stage_file
from streamstage.archive.runners import DaskCluster, LocalPool

__all__ = [
    "DaskCluster",
    "FileJob",
    "FileResult",
    "LocalPool",
    "StagingOptions",
    "stage_archive",
    "stage_file",
    "stage_files",
]
