// Private: the XDMF sidecar of a snapshot file, and atomic text-file replacement.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dfluid/grid.hpp"

namespace dfluid::io::detail {

/// One dataset as the sidecar shows it: a cell scalar, or a cell vector [..][3].
struct XdmfAttribute {
  std::string name;     ///< attribute name shown in ParaView ("density", "velocity")
  std::string dataset;  ///< absolute dataset path in the HDF5 file
  bool vector = false;
  int precision = 4;  ///< bytes per value: 4 or 8
};

struct XdmfSnapshot {
  std::int64_t step = 0;
  double time = 0;
  std::vector<XdmfAttribute> attributes;
};

/// Xdmf 3 text: a temporal collection of uniform grids on a co-rectilinear mesh
/// (2DCoRectMesh for 1D and 2D grids, 3DCoRectMesh for 3D), cell-centred attributes
/// that reference `h5_name`:/snapshots/... .
std::string make_xdmf(const std::string& h5_name, const Grid& g,
                      const std::vector<XdmfSnapshot>& snapshots);

/// Writes `text` to path + ".tmp", then renames it over `path`; throws IoError
/// naming the path and the system error on any failure.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace dfluid::io::detail
