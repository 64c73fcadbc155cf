"""Layer modules, one file per idea (each cites its paper), and the shared dimension-generic helpers."""

from zoo_workloads.models.layers.bam import BAM
from zoo_workloads.models.layers.gather_excite import GatherExcite
from zoo_workloads.models.layers.gem import GeM
from zoo_workloads.models.layers.glore import GloreUnit

__all__ = ["BAM", "GatherExcite", "GeM", "GloreUnit"]
