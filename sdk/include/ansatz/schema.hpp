// ansatz/schema.hpp -- a component's configuration: declared once, validated by the host, read back.
//
// describe(Schema&) declares every key with its type, default or requirement, range or choices and
// one line of documentation (as GStreamer's g_param_spec_* or CMSSW's fillDescriptions). The host
// validates the pipeline against these declarations before any component exists, and the component
// receives a Config of plain values, never a YAML node.
//
//     static void describe(ansatz::Schema& s)
//     {
//         s.integer("hidden", "number of hidden units").default_value(64).min(1);
//         s.real("init_std", "standard deviation of the initial weights").default_value(0.01).min(0);
//         s.integers("shape", "lattice extents").default_value("[8, 8]").min(1).length(1, 3);
//         s.component("inner", ANSATZ_KIND_SAMPLER, "the sampler run at every temperature");
//     }
//
// A FLOAT must fit a float32 unless it is declared .double_precision(); list bounds (min, max) apply
// to every item, length() to the count. A COMPONENT key names another component of the pipeline of
// the given kind; the host creates that one first and passes its handle (Config::model, ::sampler).
#pragma once

#include "ansatz/abi.h"
#include "ansatz/error.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

namespace ansatz
{

class Schema
{
public:
    // The builder of one key; every setter returns it again.
    class Key
    {
    public:
        Key& default_value(double v) { return set_default(format(v)); }
        Key& default_value(int v) { return set_default(std::to_string(v)); }
        Key& default_value(long v) { return set_default(std::to_string(v)); }
        Key& default_value(bool v) { return set_default(v ? "true" : "false"); }
        Key& default_value(const char* v) { return set_default(v); }
        Key& required()
        {
            spec_->flags = (spec_->flags | ANSATZ_PARAM_REQUIRED) & ~ANSATZ_PARAM_OPTIONAL;
            spec_->default_value = nullptr;
            return *this;
        }
        // No default and may be absent; Config::has tells.
        Key& optional()
        {
            spec_->flags = (spec_->flags | ANSATZ_PARAM_OPTIONAL) & ~ANSATZ_PARAM_REQUIRED;
            spec_->default_value = nullptr;
            return *this;
        }
        Key& min(double v, bool exclusive = false)
        {
            spec_->min = v;
            spec_->flags |= ANSATZ_PARAM_HAS_MIN | (exclusive ? uint32_t{ ANSATZ_PARAM_MIN_EXCLUSIVE } : 0u);
            return *this;
        }
        Key& max(double v, bool exclusive = false)
        {
            spec_->max = v;
            spec_->flags |= ANSATZ_PARAM_HAS_MAX | (exclusive ? uint32_t{ ANSATZ_PARAM_MAX_EXCLUSIVE } : 0u);
            return *this;
        }
        Key& must_exist()
        {
            spec_->flags |= ANSATZ_PARAM_MUST_EXIST;
            return *this;
        }
        // FLOAT: the component keeps the value as a double (any finite double is accepted).
        Key& double_precision()
        {
            spec_->flags |= ANSATZ_PARAM_DOUBLE;
            return *this;
        }
        // Lists: the number of items, from min_items to max_items (0: no maximum).
        Key& length(int64_t min_items, int64_t max_items = 0)
        {
            spec_->min_length = min_items;
            spec_->max_length = max_items;
            return *this;
        }
        // COMPONENT naming a model: the ansatz_model_function bits it must have.
        Key& needs(uint64_t model_functions)
        {
            spec_->component_needs = model_functions;
            return *this;
        }

    private:
        friend class Schema;
        Key(Schema* owner, ansatz_param_spec* spec) : owner_(owner), spec_(spec) {}
        Key& set_default(std::string text)
        {
            spec_->default_value = owner_->keep(std::move(text));
            spec_->flags &= ~(ANSATZ_PARAM_REQUIRED | ANSATZ_PARAM_OPTIONAL);
            return *this;
        }
        static std::string format(double v)
        {
            char buffer[64];
            std::snprintf(buffer, sizeof buffer, "%.17g", v);
            // Round-trips, but prefer the short spelling when it also does (0.1, not 0.10000000000000001),
            // and no exponent for magnitudes a person writes without one (10, not 1e+01).
            const bool plain = v == 0 || (std::fabs(v) >= 1e-4 && std::fabs(v) < 1e16);
            for (int precision = 1; precision < 17; ++precision)
            {
                char shorter[64];
                std::snprintf(shorter, sizeof shorter, "%.*g", precision, v);
                if (std::strtod(shorter, nullptr) == v && !(plain && std::strchr(shorter, 'e')))
                    return shorter;
            }
            return buffer;
        }
        Schema* owner_;
        ansatz_param_spec* spec_;
    };

    Key boolean(const char* name, const char* doc) { return add(name, doc, ANSATZ_PARAM_BOOL); }
    Key integer(const char* name, const char* doc) { return add(name, doc, ANSATZ_PARAM_INT); }
    Key real(const char* name, const char* doc) { return add(name, doc, ANSATZ_PARAM_FLOAT); }
    Key string(const char* name, const char* doc) { return add(name, doc, ANSATZ_PARAM_STRING); }
    Key path(const char* name, const char* doc) { return add(name, doc, ANSATZ_PARAM_PATH); }
    Key integers(const char* name, const char* doc) { return add(name, doc, ANSATZ_PARAM_INT_LIST); }
    Key reals(const char* name, const char* doc) { return add(name, doc, ANSATZ_PARAM_FLOAT_LIST); }
    Key strings(const char* name, const char* doc) { return add(name, doc, ANSATZ_PARAM_STRING_LIST); }
    // The name of another component of the pipeline, of `kind`.
    Key component(const char* name, ansatz_kind kind, const char* doc)
    {
        Key key = add(name, doc, ANSATZ_PARAM_COMPONENT);
        key.spec_->component_kind = kind;
        return key;
    }
    // choices: the allowed values separated by '|', e.g. "random|data".
    Key choice(const char* name, const char* choices, const char* doc)
    {
        Key key = add(name, doc, ANSATZ_PARAM_CHOICE);
        key.spec_->choices = keep(choices);
        return key;
    }

    int32_t size() const { return static_cast<int32_t>(specs_.size()); }

    // The specs as one contiguous array (what the descriptor points to); stable once describe() ends.
    const ansatz_param_spec* finish()
    {
        flat_.assign(specs_.begin(), specs_.end());
        return flat_.empty() ? nullptr : flat_.data();
    }

private:
    Key add(const char* name, const char* doc, ansatz_param_type type)
    {
        ansatz_param_spec spec{};
        spec.struct_size = sizeof(ansatz_param_spec);
        spec.type = type;
        spec.flags = ANSATZ_PARAM_REQUIRED; // until a default is given
        spec.name = keep(name);
        spec.doc = keep(doc);
        specs_.push_back(spec);
        return Key(this, &specs_.back());
    }
    const char* keep(std::string text)
    {
        strings_.push_back(std::move(text));
        return strings_.back().c_str();
    }

    std::deque<ansatz_param_spec> specs_; // deque: Key keeps a pointer while more keys are added
    std::vector<ansatz_param_spec> flat_;
    std::deque<std::string> strings_;
};

// The validated configuration a component is created with. It refers to the host's ansatz_config,
// which lives only during create (abi.h): read what you need in the constructor, never keep a Config.
class Config
{
public:
    explicit Config(const ansatz_config& c) : c_(c) {}
    explicit Config(const ansatz_config&&) = delete; // would refer to a temporary
    Config(const Config&) = delete;
    Config& operator=(const Config&) = delete;

    const char* instance_name() const { return c_.instance_name ? c_.instance_name : "?"; }
    bool has(const char* name) const { return find(name).present != 0; }

    std::vector<int64_t> integers(const char* name) const
    {
        const ansatz_value& v = get(name, ANSATZ_PARAM_INT_LIST);
        return std::vector<int64_t>(v.integers, v.integers + v.count);
    }
    std::vector<double> reals(const char* name) const
    {
        const ansatz_value& v = get(name, ANSATZ_PARAM_FLOAT_LIST);
        return std::vector<double>(v.reals, v.reals + v.count);
    }
    std::vector<std::string> strings(const char* name) const
    {
        const ansatz_value& v = get(name, ANSATZ_PARAM_STRING_LIST);
        return std::vector<std::string>(v.texts, v.texts + v.count);
    }
    // The handle of the component a COMPONENT key names; it outlives this component.
    ansatz_handle component(const char* name) const { return get(name, ANSATZ_PARAM_COMPONENT).component; }

    bool boolean(const char* name) const { return get(name, ANSATZ_PARAM_BOOL).integer != 0; }
    int64_t integer(const char* name) const { return get(name, ANSATZ_PARAM_INT).integer; }
    double real(const char* name) const { return get(name, ANSATZ_PARAM_FLOAT).real; }
    std::string string(const char* name) const
    {
        const ansatz_value& v = find(name);
        if (v.type != ANSATZ_PARAM_STRING && v.type != ANSATZ_PARAM_PATH && v.type != ANSATZ_PARAM_CHOICE)
            throw Error(std::string("configuration key '") + name + "' is not a string");
        require_present(v);
        return v.text ? v.text : "";
    }

private:
    const ansatz_value& get(const char* name, int32_t type) const
    {
        const ansatz_value& v = find(name);
        if (v.type != type)
            throw Error(std::string("configuration key '") + name + "' is read with the wrong type");
        require_present(v);
        return v;
    }
    void require_present(const ansatz_value& v) const
    {
        if (!v.present)
            throw Error(std::string("configuration key '") + v.name + "' is absent; check has() first");
    }
    const ansatz_value& find(const char* name) const
    {
        // Step by the host's element size: a newer host's ansatz_value may be larger than ours.
        const size_t stride = c_.value_size ? c_.value_size : sizeof(ansatz_value);
        const char* base = reinterpret_cast<const char*>(c_.values);
        for (int32_t i = 0; i < c_.count; ++i)
        {
            const auto& v = *reinterpret_cast<const ansatz_value*>(base + static_cast<size_t>(i) * stride);
            if (v.name && std::strcmp(v.name, name) == 0)
                return v;
        }
        throw Error(std::string("configuration key '") + name + "' was not declared in describe()");
    }

    const ansatz_config& c_;
};

} // namespace ansatz
