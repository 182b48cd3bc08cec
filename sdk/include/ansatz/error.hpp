// ansatz/error.hpp -- the two kinds of failure, and the conversion to and from ansatz_status.
//
// Inside a component, failures are C++ exceptions: throw ansatz::InputError when the user's input is
// wrong (exit status 2), ansatz::Error (or any std::exception) when running fails (exit status 1).
// At the C boundary the trampolines of plugin.hpp turn them into an ansatz_status; the wrappers of
// refs.hpp turn a failed status back into the same exception on the caller's side.
#pragma once

#include "ansatz/abi.h"

#include <cstring>
#include <stdexcept>
#include <string>

namespace ansatz
{

class Error : public std::runtime_error
{
public:
    explicit Error(const std::string& message, int32_t code = ANSATZ_STATUS_FAILURE)
        : std::runtime_error(message), code_(code)
    {
    }
    int32_t code() const noexcept { return code_; }

private:
    int32_t code_;
};

// The user's configuration or data is wrong: the run stops with exit status 2.
class InputError : public Error
{
public:
    explicit InputError(const std::string& message) : Error(message, ANSATZ_STATUS_INVALID_INPUT) {}
};

inline void set_status(ansatz_status* st, int32_t code, const char* message) noexcept
{
    if (st == nullptr)
        return;
    st->code = code;
    if (code == ANSATZ_STATUS_OK)
    {
        st->message[0] = '\0'; // the hot path: no 1 KiB copy per successful call
        return;
    }
    std::strncpy(st->message, message, ANSATZ_STATUS_MESSAGE_SIZE - 1);
    st->message[ANSATZ_STATUS_MESSAGE_SIZE - 1] = '\0';
}

// Runs body and reports any exception through st; returns st->code. The one place where a C++
// exception is stopped before it reaches a C caller.
template <class Body>
int32_t guard(ansatz_status* st, Body&& body) noexcept
{
    try
    {
        body();
        set_status(st, ANSATZ_STATUS_OK, "");
        return ANSATZ_STATUS_OK;
    }
    catch (const Error& e)
    {
        set_status(st, e.code(), e.what());
        return e.code();
    }
    catch (const std::bad_alloc&)
    {
        set_status(st, ANSATZ_STATUS_FAILURE, "out of memory");
        return ANSATZ_STATUS_FAILURE;
    }
    catch (const std::exception& e)
    {
        set_status(st, ANSATZ_STATUS_FAILURE, e.what());
        return ANSATZ_STATUS_FAILURE;
    }
    catch (...)
    {
        set_status(st, ANSATZ_STATUS_FAILURE, "unknown exception");
        return ANSATZ_STATUS_FAILURE;
    }
}

// A status for one call, cleared without zeroing its 1 KiB message (a callee writes the message only
// when it fails): for calls made once per proposal step, where `ansatz_status st{}` would cost a memset.
inline ansatz_status fresh_status()
{
    ansatz_status st;
    st.code = ANSATZ_STATUS_OK;
    st.message[0] = '\0';
    return st;
}

// Throws the status of a failed call as the matching exception.
inline void check(int32_t code, const ansatz_status& st)
{
    if (code == ANSATZ_STATUS_OK)
        return;
    if (code == ANSATZ_STATUS_INVALID_INPUT)
        throw InputError(st.message);
    throw Error(st.message, code);
}

} // namespace ansatz
