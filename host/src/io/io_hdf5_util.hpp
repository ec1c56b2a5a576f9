// Private helpers of the HDF5 I/O: a lock around every HDF5 call, HDF5 error
// stacks turned into IoError messages, owning handles and attribute helpers.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "dfluid/io/hdf5.hpp"

namespace dfluid::io::detail {

/// Held around every sequence of HDF5 calls (the writer thread and readers may
/// run at once; not every HDF5 build is thread-safe). Also switches HDF5's
/// automatic error printing off for the calling thread.
class H5Lock {
 public:
  H5Lock();
  ~H5Lock();
  H5Lock(const H5Lock&) = delete;
  H5Lock& operator=(const H5Lock&) = delete;

 private:
  std::unique_lock<std::recursive_mutex> lock_;
};

/// The current HDF5 error stack as text ("H5Fopen: unable to open file; ...");
/// clears the stack.
std::string h5_error_stack();
/// Throws IoError("<what>: <HDF5 message>").
[[noreturn]] void fail(const std::string& what);

/// Owning HDF5 identifier; the close function is chosen from the id's type.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  Handle(Handle&& o) noexcept : id_(o.id_) { o.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      o.id_ = H5I_INVALID_HID;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();
  /// Closes now and reports a failure (used for files, where closing writes).
  void close_or_throw(const std::string& what);

 private:
  hid_t id_ = H5I_INVALID_HID;
};

/// Checks an id returned by HDF5: throws IoError(what + HDF5 stack) if negative.
Handle check_id(hid_t id, const std::string& what);
void check(herr_t status, const std::string& what);

// Attributes on any object (file, group, dataset). Writers replace existing ones.
void write_attr(hid_t obj, const char* name, const std::string& value, const std::string& where);
void write_attr(hid_t obj, const char* name, double value, const std::string& where);
void write_attr(hid_t obj, const char* name, std::int64_t value, const std::string& where);
void write_attr(hid_t obj, const char* name, const std::vector<double>& v,
                const std::string& where);
void write_attr(hid_t obj, const char* name, const std::vector<std::int64_t>& v,
                const std::string& where);

bool has_attr(hid_t obj, const char* name);
std::string read_attr_string(hid_t obj, const char* name, const std::string& where);
double read_attr_double(hid_t obj, const char* name, const std::string& where);
std::int64_t read_attr_int(hid_t obj, const char* name, const std::string& where);
std::vector<double> read_attr_doubles(hid_t obj, const char* name, const std::string& where);
std::vector<std::int64_t> read_attr_ints(hid_t obj, const char* name, const std::string& where);
/// Any scalar numeric or string attribute, as text.
std::string read_attr_as_text(hid_t obj, const char* name, const std::string& where);

/// "/snapshots/00000010"
std::string snapshot_group_name(std::int64_t step);
/// Dataset shape (C order, x last) for values at extents e on a grid of dimension dim.
std::vector<hsize_t> dataset_shape(int dim, const std::array<int, 3>& e);
std::string shape_to_string(const std::vector<hsize_t>& s);
const char* location_attr(Location loc);  ///< "cell", "x-faces", ...
Location parse_location(const std::string& s, const std::string& where);

}  // namespace dfluid::io::detail
