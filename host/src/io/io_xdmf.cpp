// XDMF sidecar: generation and atomic replacement.
#include "io/io_xdmf.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "dfluid/io/hdf5.hpp"

namespace dfluid::io {

std::string xdmf_path_for(const std::string& h5_path) {
  for (const char* ext : {".h5", ".hdf5", ".hdf"}) {
    std::size_t n = std::strlen(ext);
    if (h5_path.size() > n && h5_path.compare(h5_path.size() - n, n, ext) == 0)
      return h5_path.substr(0, h5_path.size() - n) + ".xmf";
  }
  return h5_path + ".xmf";
}

namespace detail {
namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

std::string make_xdmf(const std::string& h5_name, const Grid& g,
                      const std::vector<XdmfSnapshot>& snapshots) {
  // XDMF lists axes slowest first (z y x), as the datasets are stored.
  std::string topo, geom, origin, spacing, cells;
  if (g.dim == 3) {
    topo = "3DCoRectMesh";
    geom = "ORIGIN_DXDYDZ";
    cells = std::to_string(g.n[2]) + " " + std::to_string(g.n[1]) + " " + std::to_string(g.n[0]);
    origin = num(g.origin[2]) + " " + num(g.origin[1]) + " " + num(g.origin[0]);
    spacing = num(g.dx) + " " + num(g.dx) + " " + num(g.dx);
  } else {  // 1D is shown as a 2D mesh one cell high
    topo = "2DCoRectMesh";
    geom = "ORIGIN_DXDY";
    cells = std::to_string(g.n[1]) + " " + std::to_string(g.n[0]);
    origin = num(g.origin[1]) + " " + num(g.origin[0]);
    spacing = num(g.dx) + " " + num(g.dx);
  }
  std::string nodes;
  {
    std::array<int, 3> nn{g.n[0] + 1, g.n[1] + 1, g.n[2] + 1};
    nodes = g.dim == 3
                ? std::to_string(nn[2]) + " " + std::to_string(nn[1]) + " " + std::to_string(nn[0])
                : std::to_string(nn[1]) + " " + std::to_string(nn[0]);
  }
  const int ndim = g.dim == 3 ? 3 : 2;
  const std::string file = xml_escape(h5_name);

  std::string x;
  x += "<?xml version=\"1.0\" ?>\n";
  x += "<!DOCTYPE Xdmf SYSTEM \"Xdmf.dtd\" []>\n";
  x += "<Xdmf Version=\"3.0\">\n <Domain>\n";
  x += "  <Grid Name=\"dfluid\" GridType=\"Collection\" CollectionType=\"Temporal\">\n";
  for (const XdmfSnapshot& s : snapshots) {
    char name[48];
    std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(s.step));
    x += "   <Grid Name=\"" + std::string(name) + "\" GridType=\"Uniform\">\n";
    x += "    <Time Value=\"" + num(s.time) + "\"/>\n";
    x += "    <Topology TopologyType=\"" + topo + "\" Dimensions=\"" + nodes + "\"/>\n";
    x += "    <Geometry GeometryType=\"" + geom + "\">\n";
    x += "     <DataItem Name=\"Origin\" Dimensions=\"" + std::to_string(ndim) +
         "\" NumberType=\"Float\" Precision=\"8\" Format=\"XML\">" + origin + "</DataItem>\n";
    x += "     <DataItem Name=\"Spacing\" Dimensions=\"" + std::to_string(ndim) +
         "\" NumberType=\"Float\" Precision=\"8\" Format=\"XML\">" + spacing + "</DataItem>\n";
    x += "    </Geometry>\n";
    for (const XdmfAttribute& a : s.attributes) {
      x += "    <Attribute Name=\"" + xml_escape(a.name) + "\" AttributeType=\"" +
           (a.vector ? "Vector" : "Scalar") + "\" Center=\"Cell\">\n";
      x += "     <DataItem Dimensions=\"" + cells + (a.vector ? " 3" : "") +
           "\" NumberType=\"Float\" Precision=\"" + std::to_string(a.precision) +
           "\" Format=\"HDF\">" + file + ":" + xml_escape(a.dataset) + "</DataItem>\n";
      x += "    </Attribute>\n";
    }
    x += "   </Grid>\n";
  }
  x += "  </Grid>\n </Domain>\n</Xdmf>\n";
  return x;
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  auto sys_fail = [&](const std::string& what, const std::string& p) {
    throw IoError("XDMF sidecar: " + what + " '" + p + "': " + std::strerror(errno));
  };
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) sys_fail("cannot create", tmp);
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  int saved = errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    std::remove(tmp.c_str());
    errno = saved;
    sys_fail("cannot write", tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    saved = errno;
    std::remove(tmp.c_str());
    errno = saved;
    sys_fail("cannot rename the temporary file to", path);
  }
}

}  // namespace detail
}  // namespace dfluid::io
