// HDF5 helpers: lock, error stack to text, handles, attributes.
#include <cstdio>
#include <cstring>

#include "io/io_hdf5_util.hpp"

namespace dfluid::io {

const char* to_string(FieldKind k) {
  switch (k) {
    case FieldKind::Scalar:
      return "scalar";
    case FieldKind::Velocity:
      return "velocity";
    case FieldKind::Pressure:
      return "pressure";
    case FieldKind::Force:
      return "force";
    case FieldKind::Gradient:
      return "gradient";
  }
  return "?";
}

namespace detail {

namespace {
std::recursive_mutex& h5_mutex() {
  static std::recursive_mutex m;
  return m;
}

herr_t walk_cb(unsigned n, const H5E_error2_t* e, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (n >= 8) return 0;  // the first frames carry the message; the rest is noise
  if (!out->empty()) *out += "; ";
  if (e->func_name) *out += std::string(e->func_name) + ": ";
  std::string desc = e->desc ? e->desc : "(no description)";
  for (char& c : desc)
    if (c == '\n') c = ' ';  // H5F_open puts a ctime() timestamp, with its newline, in the text
  *out += desc;
  return 0;
}
}  // namespace

H5Lock::H5Lock() : lock_(h5_mutex()) {
  // Per thread in thread-safe HDF5 builds: set it every time, it is cheap.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}
H5Lock::~H5Lock() = default;

std::string h5_error_stack() {
  std::string msg;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, &walk_cb, &msg);
  H5Eclear2(H5E_DEFAULT);
  return msg.empty() ? std::string("no HDF5 error message") : msg;
}

void fail(const std::string& what) {
  throw IoError(what + " (HDF5: " + h5_error_stack() + ")");
}

void Handle::reset() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE:
      H5Fclose(id_);
      break;
    case H5I_GROUP:
      H5Gclose(id_);
      break;
    case H5I_DATASET:
      H5Dclose(id_);
      break;
    case H5I_DATASPACE:
      H5Sclose(id_);
      break;
    case H5I_DATATYPE:
      H5Tclose(id_);
      break;
    case H5I_ATTR:
      H5Aclose(id_);
      break;
    case H5I_GENPROP_LST:
      H5Pclose(id_);
      break;
    default:
      break;
  }
  H5Eclear2(H5E_DEFAULT);
  id_ = H5I_INVALID_HID;
}

void Handle::close_or_throw(const std::string& what) {
  if (id_ < 0) return;
  hid_t id = id_;
  id_ = H5I_INVALID_HID;
  if (H5Fclose(id) < 0) fail(what);
}

Handle check_id(hid_t id, const std::string& what) {
  if (id < 0) fail(what);
  return Handle(id);
}

void check(herr_t status, const std::string& what) {
  if (status < 0) fail(what);
}

namespace {

Handle string_type(std::size_t len) {
  Handle t = check_id(H5Tcopy(H5T_C_S1), "H5Tcopy");
  check(H5Tset_size(t, len > 0 ? len : 1), "H5Tset_size");
  check(H5Tset_strpad(t, H5T_STR_NULLTERM), "H5Tset_strpad");
  check(H5Tset_cset(t, H5T_CSET_UTF8), "H5Tset_cset");
  return t;
}

void put_attr(hid_t obj, const char* name, hid_t file_type, hid_t mem_type, hid_t space,
              const void* data, const std::string& where) {
  if (H5Aexists(obj, name) > 0)
    check(H5Adelete(obj, name), where + ": replacing attribute " + name);
  Handle a = check_id(H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT),
                      where + ": cannot create attribute " + name);
  check(H5Awrite(a, mem_type, data), where + ": cannot write attribute " + name);
}

Handle scalar_space() {
  return check_id(H5Screate(H5S_SCALAR), "H5Screate");
}
Handle vector_space(std::size_t n) {
  hsize_t d = n;
  return check_id(H5Screate_simple(1, &d, nullptr), "H5Screate_simple");
}

Handle open_attr(hid_t obj, const char* name, const std::string& where) {
  if (H5Aexists(obj, name) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw IoError(where + ": attribute '" + name + "' is missing");
  }
  return check_id(H5Aopen(obj, name, H5P_DEFAULT), where + ": cannot open attribute " + name);
}

template <class T>
std::vector<T> read_numeric(hid_t obj, const char* name, hid_t mem_type, const std::string& where) {
  Handle a = open_attr(obj, name, where);
  Handle t = check_id(H5Aget_type(a), where + ": attribute type");
  H5T_class_t c = H5Tget_class(t);
  if (c != H5T_INTEGER && c != H5T_FLOAT)
    throw IoError(where + ": attribute '" + name + "' is not numeric");
  Handle s = check_id(H5Aget_space(a), where + ": attribute space");
  hssize_t n = H5Sget_simple_extent_npoints(s);
  if (n < 1) throw IoError(where + ": attribute '" + name + "' is empty");
  std::vector<T> v(static_cast<std::size_t>(n));
  check(H5Aread(a, mem_type, v.data()), where + ": cannot read attribute " + name);
  return v;
}

}  // namespace

void write_attr(hid_t obj, const char* name, const std::string& value, const std::string& where) {
  Handle t = string_type(value.size() + 1);
  Handle s = scalar_space();
  put_attr(obj, name, t, t, s, value.c_str(), where);
}
void write_attr(hid_t obj, const char* name, double value, const std::string& where) {
  Handle s = scalar_space();
  put_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s, &value, where);
}
void write_attr(hid_t obj, const char* name, std::int64_t value, const std::string& where) {
  Handle s = scalar_space();
  put_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, s, &value, where);
}
void write_attr(hid_t obj, const char* name, const std::vector<double>& v,
                const std::string& where) {
  Handle s = vector_space(v.size());
  put_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s, v.data(), where);
}
void write_attr(hid_t obj, const char* name, const std::vector<std::int64_t>& v,
                const std::string& where) {
  Handle s = vector_space(v.size());
  put_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, s, v.data(), where);
}

bool has_attr(hid_t obj, const char* name) {
  htri_t r = H5Aexists(obj, name);
  H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

std::string read_attr_string(hid_t obj, const char* name, const std::string& where) {
  Handle a = open_attr(obj, name, where);
  Handle t = check_id(H5Aget_type(a), where + ": attribute type");
  if (H5Tget_class(t) != H5T_STRING)
    throw IoError(where + ": attribute '" + name + "' is not a string");
  if (H5Tis_variable_str(t) > 0) {
    Handle mt = check_id(H5Tcopy(H5T_C_S1), "H5Tcopy");
    check(H5Tset_size(mt, H5T_VARIABLE), "H5Tset_size");
    char* p = nullptr;
    check(H5Aread(a, mt, &p), where + ": cannot read attribute " + name);
    std::string out = p ? p : "";
    Handle s = check_id(H5Aget_space(a), "H5Aget_space");
    H5Dvlen_reclaim(mt, s, H5P_DEFAULT, &p);
    return out;
  }
  std::size_t n = H5Tget_size(t);
  std::vector<char> buf(n + 1, '\0');
  check(H5Aread(a, t, buf.data()), where + ": cannot read attribute " + name);
  return std::string(buf.data(), strnlen(buf.data(), n));
}

double read_attr_double(hid_t obj, const char* name, const std::string& where) {
  return read_numeric<double>(obj, name, H5T_NATIVE_DOUBLE, where)[0];
}
std::int64_t read_attr_int(hid_t obj, const char* name, const std::string& where) {
  return read_numeric<std::int64_t>(obj, name, H5T_NATIVE_INT64, where)[0];
}
std::vector<double> read_attr_doubles(hid_t obj, const char* name, const std::string& where) {
  return read_numeric<double>(obj, name, H5T_NATIVE_DOUBLE, where);
}
std::vector<std::int64_t> read_attr_ints(hid_t obj, const char* name, const std::string& where) {
  return read_numeric<std::int64_t>(obj, name, H5T_NATIVE_INT64, where);
}

std::string read_attr_as_text(hid_t obj, const char* name, const std::string& where) {
  Handle a = open_attr(obj, name, where);
  Handle t = check_id(H5Aget_type(a), where + ": attribute type");
  switch (H5Tget_class(t)) {
    case H5T_STRING:
      return read_attr_string(obj, name, where);
    case H5T_INTEGER:
      return std::to_string(read_attr_int(obj, name, where));
    case H5T_FLOAT: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", read_attr_double(obj, name, where));
      return buf;
    }
    default:
      throw IoError(where + ": attribute '" + name + "' has an unsupported type");
  }
}

std::string snapshot_group_name(std::int64_t step) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "/snapshots/%08lld", static_cast<long long>(step));
  return buf;
}

std::vector<hsize_t> dataset_shape(int dim, const std::array<int, 3>& e) {
  std::vector<hsize_t> s;
  for (int a = dim - 1; a >= 0; --a)
    s.push_back(static_cast<hsize_t>(e[a]));
  return s;
}

std::string shape_to_string(const std::vector<hsize_t>& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(static_cast<unsigned long long>(s[i]));
  }
  if (s.size() == 1) out += ",";
  return out + ")";
}

const char* location_attr(Location loc) {
  return to_string(loc);
}

Location parse_location(const std::string& s, const std::string& where) {
  for (Location l : {Location::Cell, Location::FaceX, Location::FaceY, Location::FaceZ})
    if (s == to_string(l)) return l;
  throw IoError(where + ": unknown location '" + s + "'");
}

}  // namespace detail
}  // namespace dfluid::io
