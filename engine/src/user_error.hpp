// user_error.hpp -- a failure the user can fix (bad pipeline, bad data, bad plugin): exit status 2.
//
// One exception type for bad input, on both sides of the plugin boundary: the SDK's
// ansatz::InputError, which a plugin throws and the engine throws too. The message is complete as it
// stands: it says what is wrong and where (file:line:column, plugin file, data file and byte offset).
// main() prints it and exits 2; nothing else prints a stack trace.
#pragma once

#include "ansatz/error.hpp"

namespace ansatz::engine
{

using UserError = ansatz::InputError;

} // namespace ansatz::engine
