"""Many beds, one process (``streamstage lab``): see :mod:`streamstage.lab.lab`."""

from streamstage.lab.beds import BedSpec, LabFile, bed_from_option, read_lab_file
from streamstage.lab.lab import LabPlan, LabResult, run_lab
from streamstage.lab.stepper import BedSeat, LabStepper

__all__ = [
    "BedSeat",
    "BedSpec",
    "LabFile",
    "LabPlan",
    "LabResult",
    "LabStepper",
    "bed_from_option",
    "read_lab_file",
    "run_lab",
]
