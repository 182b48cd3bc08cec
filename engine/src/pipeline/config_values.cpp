#include "pipeline/config_values.hpp"

namespace ansatz::engine
{

ConfigValues& ConfigValues::operator=(const ConfigValues& other)
{
    if (this == &other)
        return *this;
    strings_.clear();
    integer_lists_.clear();
    real_lists_.clear();
    text_lists_.clear();
    values_.clear();
    // Re-point every string and list at this object's own copies.
    for (const ansatz_value& v : other.values_)
    {
        ansatz_value& copy = values_.emplace_back(v);
        copy.name = keep(v.name);
        copy.text = v.text ? keep(v.text) : nullptr;
        if (v.integers)
            copy.integers = integer_lists_.emplace_back(v.integers, v.integers + v.count).data();
        if (v.reals)
            copy.reals = real_lists_.emplace_back(v.reals, v.reals + v.count).data();
        if (v.texts)
        {
            std::vector<const char*>& texts = text_lists_.emplace_back();
            for (int64_t i = 0; i < v.count; ++i)
                texts.push_back(keep(v.texts[i]));
            copy.texts = texts.data();
        }
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

void ConfigValues::set_integers(const std::string& name, const std::vector<int64_t>& v)
{
    ansatz_value& value = add(name, ANSATZ_PARAM_INT_LIST);
    value.count = static_cast<int64_t>(v.size());
    value.integers = integer_lists_.emplace_back(v).data();
}

void ConfigValues::set_reals(const std::string& name, const std::vector<double>& v)
{
    ansatz_value& value = add(name, ANSATZ_PARAM_FLOAT_LIST);
    value.count = static_cast<int64_t>(v.size());
    value.reals = real_lists_.emplace_back(v).data();
}

void ConfigValues::set_texts(const std::string& name, const std::vector<std::string>& v)
{
    std::vector<const char*>& texts = text_lists_.emplace_back();
    for (const std::string& t : v)
        texts.push_back(keep(t));
    ansatz_value& value = add(name, ANSATZ_PARAM_STRING_LIST);
    value.count = static_cast<int64_t>(v.size());
    value.texts = texts.data();
}

void ConfigValues::set_component(const std::string& name, const std::string& component,
                                 const ansatz_handle& handle)
{
    ansatz_value& value = add(name, ANSATZ_PARAM_COMPONENT);
    value.text = keep(component);
    value.component = handle;
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
