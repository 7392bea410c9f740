"""Event data: the 19 x 3 object layout and hardware units (layout), EventSample
(sample), the conditions-aware generator (generator), and readers: HDF5 challenge
layout (hdf5), ROOT through a branch mapping (root), and ``read_events``
dispatching on the file type (reader).

Import from the submodules (``from l1flow.data.reader import read_events``).
The region grid the conditions mask is in ``l1flow.geometry``, below both.
"""
