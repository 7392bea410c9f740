"""The calorimeter region grid, shared by every layer that names a region.

The conditions mask regions by index and the event data fills them, so the
grid lives below both (``l1flow.conditions`` and ``l1flow.data`` import it;
it imports nothing of l1flow). Region index = ``iphi * REGION_ETA + ieta``.
"""

from __future__ import annotations

REGION_PHI = 18
REGION_ETA = 14
N_REGIONS = REGION_PHI * REGION_ETA
