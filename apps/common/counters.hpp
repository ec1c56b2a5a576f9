// The Context counters in the apps' summaries: what a run cost the GPU (kernel launches,
// host waits, allocations, bytes across the bus). On the CPU path these are the events the
// CUDA path would perform for the same work, so a CPU run tells what a GPU run would cost.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "dfluid/context.hpp"

namespace dfluid::app {

/// {"launches": .., "host_waits": .., "allocations": .., "frees": .., "bytes_to_device": ..,
///  "bytes_to_host": .., "peak_bytes": ..}
nlohmann::json counters_json(const ContextCounters& c);

/// "N launches, N host waits, N allocations, N frees, N B to device, N B to host".
std::string counters_text(const ContextCounters& c);

/// The summary line the apps print: the counters, labelled with the path they came from.
std::string counters_summary_line(const Context& ctx);

}  // namespace dfluid::app
