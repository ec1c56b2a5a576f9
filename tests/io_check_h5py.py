#!/usr/bin/python3
"""Checks dfluid snapshot files with h5py and their XDMF sidecars with xml.etree.

Usage: io_check_h5py.py DIR   (checks every DIR/*.h5 and DIR/*.xmf)

Run with Debian's /usr/bin/python3 (python3-h5py). Exits 77 (ctest: skipped)
when h5py or numpy cannot be imported, 1 on the first failed check.
"""
import glob
import os
import sys
import xml.etree.ElementTree as ET

try:
    import h5py
    import numpy as np
except ImportError as e:  # pragma: no cover
    print(f"SKIP: {e}; install python3-h5py for /usr/bin/python3")
    sys.exit(77)


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def face_shape(grid, axis):
    dim, cells = grid["dim"], list(grid["cells"])
    periodic = grid["boundary"][axis].startswith("periodic")
    ext = cells[:]
    if not periodic:
        ext[axis] += 1
    return tuple(reversed(ext[:dim]))


def check_h5(path):
    with h5py.File(path, "r") as f:
        expect(text(f.attrs["format"]) == "dfluid.snapshots", f"{path}: format attribute")
        expect(int(f.attrs["format_version"]) == 1, f"{path}: format_version")
        for a in ("dfluid_version", "precision", "dt", "data_order"):
            expect(a in f.attrs, f"{path}: root attribute {a} missing")
        g = f["grid"].attrs
        dim = int(g["dim"])
        cells = [int(c) for c in g["cells"]]
        grid = {"dim": dim, "cells": cells,
                "boundary": [text(g["boundary_" + ax]) for ax in "xyz"]}
        shape = tuple(reversed(cells[:dim]))
        expect(tuple(int(s) for s in g["shape"]) == shape, f"{path}: /grid shape {g['shape']}")
        expect(float(g["dx"]) > 0 and len(g["origin"]) == 3, f"{path}: dx/origin")
        expect(len(f["run"].attrs) > 0, f"{path}: no run attributes")
        snaps = f["snapshots"]
        expect(len(snaps) > 0, f"{path}: no snapshots")
        for name, s in snaps.items():
            step = int(s.attrs["step"])
            expect(name == f"{step:08d}", f"{path}: group {name} holds step {step}")
            float(s.attrs["time"]), float(s.attrs["dt"])
            vectors = {}
            for dname, d in s.items():
                loc = text(d.attrs["location"])
                text(d.attrs["kind"])
                if dname.endswith("_cell"):
                    expect(d.shape == shape + (3,), f"{path}:{d.name} shape {d.shape}")
                elif loc == "cell":
                    expect(d.shape == shape, f"{path}:{d.name} shape {d.shape} != {shape}")
                else:
                    axis = "xyz".index(loc[0])
                    expect(d.shape == face_shape(grid, axis), f"{path}:{d.name} shape {d.shape}")
                    vectors.setdefault(dname.rsplit("_", 1)[0], {})[axis] = d[()]
                expect(d.chunks is not None, f"{path}:{d.name} is not chunked")
            for base, comps in vectors.items():
                cell = s[base + "_cell"][()]
                for axis, face in comps.items():
                    # numpy axis of `axis` in C order (z, y, x)
                    nax = dim - 1 - axis
                    hi = np.roll(face, -1, axis=nax)
                    avg = 0.5 * (face.astype(np.float64) + hi.astype(np.float64))
                    avg = np.take(avg, range(cells[axis]), axis=nax).astype(cell.dtype)
                    expect(np.array_equal(cell[..., axis], avg, equal_nan=True),
                           f"{path}:{s.name}/{base}_cell component {axis} is not the face average")
                for axis in range(dim, 3):
                    expect(not cell[..., axis].any(), f"{path}: {base}_cell unused component")
        return f.filename, len(snaps)


def check_xmf(xmf):
    root = ET.parse(xmf).getroot()
    expect(root.tag == "Xdmf", f"{xmf}: root is {root.tag}")
    coll = root.find("Domain/Grid")
    expect(coll is not None and coll.get("CollectionType") == "Temporal",
           f"{xmf}: no temporal collection")
    base = os.path.dirname(xmf)
    grids = coll.findall("Grid")
    files = {}
    times = []
    for grid in grids:
        times.append(float(grid.find("Time").get("Value")))
        topo = grid.find("Topology")
        expect(topo.get("TopologyType") in ("2DCoRectMesh", "3DCoRectMesh"), f"{xmf}: topology")
        nodes = [int(n) for n in topo.get("Dimensions").split()]
        expect(len(grid.findall("Geometry/DataItem")) == 2, f"{xmf}: geometry")
        for attr in grid.findall("Attribute"):
            expect(attr.get("Center") == "Cell", f"{xmf}: attribute not cell-centred")
            item = attr.find("DataItem")
            expect(item.get("Format") == "HDF", f"{xmf}: DataItem format")
            fname, dpath = item.text.strip().split(":", 1)
            h5path = os.path.join(base, fname)
            if h5path not in files:
                files[h5path] = h5py.File(h5path, "r")
            f = files[h5path]
            expect(dpath in f, f"{xmf}: {dpath} does not exist in {fname}")
            dims = tuple(int(n) for n in item.get("Dimensions").split())
            shape = f[dpath].shape
            squeeze = lambda t: tuple(x for x in t if x != 1)
            expect(dims == shape or squeeze(dims) == squeeze(shape),
                   f"{xmf}: {dpath} stated {dims}, stored {shape}")
            expect(tuple(n - 1 for n in nodes) == dims[: len(nodes)],
                   f"{xmf}: {dpath} dims {dims} do not fit the mesh {nodes}")
            expect(int(item.get("Precision")) == f[dpath].dtype.itemsize,
                   f"{xmf}: {dpath} precision")
            if attr.get("AttributeType") == "Vector":
                expect(dims[-1] == 3, f"{xmf}: vector {dpath} has {dims[-1]} components")
    for f in files.values():
        f.close()
    expect(times == sorted(times), f"{xmf}: times out of order")
    return len(grids)


def main():
    if len(sys.argv) != 2:
        fail("usage: io_check_h5py.py DIR")
    paths = sorted(glob.glob(os.path.join(sys.argv[1], "*.h5")))
    expect(paths, f"no .h5 files in {sys.argv[1]}")
    for p in paths:
        _, n = check_h5(p)
        xmf = p[:-3] + ".xmf"
        expect(os.path.exists(xmf), f"{xmf} missing")
        expect(check_xmf(xmf) == n, f"{xmf}: grid count differs from the snapshot count")
        print(f"ok {p}: {n} snapshots, sidecar ok")
    with h5py.File(paths[-1], "r") as f:
        d = next(iter(f["snapshots"].values()))["density"]
        print(f"  density: compression={d.compression} shuffle={d.shuffle} chunks={d.chunks}")


if __name__ == "__main__":
    main()
