// Finding the data files that ship with dfluid (data/ in the repository, installed to
// <prefix>/share/dfluid): reference solutions that apps compare against.
#pragma once

#include <string>

namespace dfluid::app {

/// Path of the data file `name`. Looks, in order, in $DFLUID_DATA_DIR, next to the running
/// binary (the build tree), in <binary>/../share/dfluid (a relocated install) and in the
/// install prefix chosen at configure time. Throws InvalidArgument naming the file, the
/// places looked in and `option` (the command-line option that overrides the lookup) when
/// none has it.
std::string find_data_file(const std::string& name, const std::string& option);

}  // namespace dfluid::app
