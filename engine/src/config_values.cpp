#include "config_values.hpp"

namespace ansatz::engine
{

ConfigValues& ConfigValues::operator=(const ConfigValues& other)
{
    if (this == &other)
        return *this;
    strings_.clear();
    values_.clear();
    // Re-point every string at this object's own copies.
    for (const ansatz_value& v : other.values_)
    {
        ansatz_value copy = v;
        copy.name = keep(v.name);
        copy.text = v.text ? keep(v.text) : nullptr;
        values_.push_back(copy);
    }
    return *this;
}

ansatz_value& ConfigValues::add(const std::string& name, int32_t type)
{
    ansatz_value v{};
    v.name = keep(name);
    v.type = type;
    v.present = 1;
    values_.push_back(v);
    return values_.back();
}

const ansatz_config& ConfigValues::c(const std::string& instance_name)
{
    instance_name_ = instance_name;
    config_ = ansatz_config{};
    config_.struct_size = sizeof(ansatz_config);
    config_.count = static_cast<int32_t>(values_.size());
    config_.values = values_.data();
    config_.value_size = sizeof(ansatz_value);
    config_.instance_name = instance_name_.c_str();
    return config_;
}

} // namespace ansatz::engine
