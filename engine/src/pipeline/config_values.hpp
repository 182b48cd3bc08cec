// config_values.hpp -- the validated configuration of one component, in the C form it is created with.
#pragma once

#include "ansatz/abi.h"

#include <deque>
#include <string>
#include <vector>

namespace ansatz::engine
{

class ConfigValues
{
public:
    ConfigValues() = default;
    ConfigValues(const ConfigValues& other) { *this = other; }
    ConfigValues& operator=(const ConfigValues& other);

    void set_bool(const std::string& name, bool v) { add(name, ANSATZ_PARAM_BOOL).integer = v ? 1 : 0; }
    void set_int(const std::string& name, int64_t v) { add(name, ANSATZ_PARAM_INT).integer = v; }
    void set_real(const std::string& name, double v) { add(name, ANSATZ_PARAM_FLOAT).real = v; }
    void set_text(const std::string& name, int32_t type, const std::string& v)
    {
        add(name, type).text = keep(v);
    }
    void set_integers(const std::string& name, const std::vector<int64_t>& v);
    void set_reals(const std::string& name, const std::vector<double>& v);
    void set_texts(const std::string& name, const std::vector<std::string>& v);
    void set_component(const std::string& name, const std::string& component, const ansatz_handle& handle);
    void set_absent(const std::string& name, int32_t type) { add(name, type).present = 0; }

    // Valid while this object lives and is not changed.
    const ansatz_config& c(const std::string& instance_name);

private:
    ansatz_value& add(const std::string& name, int32_t type);
    const char* keep(const std::string& s)
    {
        strings_.push_back(s);
        return strings_.back().c_str();
    }

    // Deques: what the values point to never moves while more is added.
    std::deque<std::string> strings_;
    std::deque<std::vector<int64_t>> integer_lists_;
    std::deque<std::vector<double>> real_lists_;
    std::deque<std::vector<const char*>> text_lists_;
    std::vector<ansatz_value> values_;
    ansatz_config config_{};
    std::string instance_name_;
};

} // namespace ansatz::engine
