// dfluid: the whole public API in one include.
#pragma once

#include "dfluid/build_config.hpp"
#include "dfluid/config.hpp"
#include "dfluid/context.hpp"
#include "dfluid/error.hpp"
#include "dfluid/field.hpp"
#include "dfluid/field_ops.hpp"
#include "dfluid/grid.hpp"
#include "dfluid/memory.hpp"
#include "dfluid/timer.hpp"
#include "dfluid/view.hpp"
