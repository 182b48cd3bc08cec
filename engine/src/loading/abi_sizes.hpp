// abi_sizes.hpp -- the sizes of ABI 2.0's structs on LP64: the smallest a 2.x plugin may give.
//
// A later 2.x minor appends fields, so sizeof grows in a newer engine; it must still accept a 2.0
// plugin's smaller structs and read a newer field only when struct_size covers it. So the loader
// compares against these numbers, never against its own sizeof. They never change within 2.x.
#pragma once

#include "ansatz/abi.h"

#include <cstddef>

namespace ansatz::engine
{

template <class T>
constexpr size_t abi_2_0_size();

#define ANSATZ_ABI_2_0_SIZE(type, bytes)                                                                     \
    template <>                                                                                              \
    constexpr size_t abi_2_0_size<type>()                                                                    \
    {                                                                                                        \
        return bytes;                                                                                        \
    }                                                                                                        \
    static_assert(sizeof(type) >= (bytes), #type " shrank below its ABI 2.0 size");

ANSATZ_ABI_2_0_SIZE(ansatz_plugin_desc, 120)
ANSATZ_ABI_2_0_SIZE(ansatz_component, 144)
ANSATZ_ABI_2_0_SIZE(ansatz_param_spec, 120)
ANSATZ_ABI_2_0_SIZE(ansatz_model_table, 128)
ANSATZ_ABI_2_0_SIZE(ansatz_energy_table, 96)
ANSATZ_ABI_2_0_SIZE(ansatz_conditionals_table, 88)
ANSATZ_ABI_2_0_SIZE(ansatz_latent_table, 120)
ANSATZ_ABI_2_0_SIZE(ansatz_sampler_table, 112)
ANSATZ_ABI_2_0_SIZE(ansatz_loss_table, 104)
ANSATZ_ABI_2_0_SIZE(ansatz_optimizer_table, 104)
ANSATZ_ABI_2_0_SIZE(ansatz_dataset_table, 88)

#undef ANSATZ_ABI_2_0_SIZE

// 2.1 and 2.2 put their new slots of the model, energy, conditionals and sampler tables into reserved
// room: those tables keep their 2.0 size exactly.
static_assert(sizeof(ansatz_energy_table) == 96 && sizeof(ansatz_conditionals_table) == 88 &&
                  sizeof(ansatz_sampler_table) == 112 && sizeof(ansatz_model_table) == 128,
              "a 2.x minor grew a table that was meant to grow into its reserved room");

// Structs that came in a later minor: the smallest size a plugin of that minor may give.
template <class T>
constexpr size_t abi_2_1_size();
template <>
constexpr size_t abi_2_1_size<ansatz_evaluator_table>()
{
    return 88;
}
static_assert(sizeof(ansatz_evaluator_table) >= 88, "ansatz_evaluator_table shrank below its ABI 2.1 size");

} // namespace ansatz::engine
