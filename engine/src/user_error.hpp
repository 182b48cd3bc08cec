// user_error.hpp -- a failure the user can fix (bad pipeline, bad data, bad plugin): exit status 2.
//
// The message is complete as it stands: it says what is wrong and where (file:line:column, plugin
// file, data file and byte offset). main() prints it and exits 2; nothing else prints a stack trace.
#pragma once

#include <stdexcept>
#include <string>

namespace ansatz::engine
{

class UserError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

} // namespace ansatz::engine
