/*
 * ansatz/abi.h -- the binary contract between the `ansatz` host and its plugins.
 *
 * Everything that crosses a library boundary is declared here, in plain C: sized integers,
 * `const char*`, tensor views, status structs and tables of function pointers. No C++ type ever
 * crosses, because xtensor's container types change with XTENSOR_USE_XSIMD, -march and the default
 * layout, and the standard library's with the compiler: two modules built differently would agree
 * on a name and disagree on a layout, silently.
 *
 * Versioning (as GStreamer's GstPluginDesc): a plugin is loaded when its ABI major equals the
 * host's and its minor is not newer. The descriptor, the components, the tables, the parameter specs
 * and the configuration start with `struct_size` (or carry their element size) and end with reserved
 * room, so a minor version may append fields or fill a reserved slot: a reader checks `struct_size`
 * before it touches a field a newer minor added, and steps through arrays by their element size, never
 * by its own sizeof. Small value structs (status, tensor, metric) are fixed for the whole major.
 *
 * Ownership: whatever a plugin allocates, its own `destroy` frees. Tensor views never own memory.
 * Errors: every call that can fail takes an `ansatz_status*` and returns its `code`; calls that return
 * a count or a size return -1 on failure.
 * Threads: the host calls a component from one thread at a time; a component may use threads of its
 * own inside a call (within the host's `threads` budget) and may call the host's `log`, `cancelled`
 * and `stream` from any of them.
 */
#ifndef ANSATZ_ABI_H
#define ANSATZ_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ANSATZ_ABI_MAJOR 1
#define ANSATZ_ABI_MINOR 0

/* The one symbol a plugin exports. Its type is `ansatz_plugin_entry_fn`. */
#define ANSATZ_PLUGIN_ENTRY_SYMBOL "ansatz_plugin_v1"

#if defined(_WIN32)
#define ANSATZ_EXPORT __declspec(dllexport)
#else
#define ANSATZ_EXPORT __attribute__((visibility("default")))
#endif

/* ---------------------------------------------------------------- status ---------------------- */

typedef enum ansatz_status_code
{
    ANSATZ_STATUS_OK = 0,
    ANSATZ_STATUS_FAILURE = 1,       /* something went wrong while running */
    ANSATZ_STATUS_INVALID_INPUT = 2, /* the user's input (config, data file) is wrong */
    ANSATZ_STATUS_CANCELLED = 3,     /* the host asked the work to stop */
} ansatz_status_code;

#define ANSATZ_STATUS_MESSAGE_SIZE 1024

/* Filled by the callee when it fails; the message is one sentence, NUL-terminated, truncated to fit. */
typedef struct ansatz_status
{
    int32_t code;
    char message[ANSATZ_STATUS_MESSAGE_SIZE];
} ansatz_status;

/* ---------------------------------------------------------------- tensors --------------------- */

#define ANSATZ_MAX_RANK 6

/* Element types of a tensor view. ABI 1.0 computes in float32 only; the field lets a later minor pass
 * other element types (e.g. exact integer state in checkpoints) through the same struct. */
typedef enum ansatz_dtype
{
    ANSATZ_DTYPE_FLOAT32 = 0,
} ansatz_dtype;

/* A view of contiguous, row-major memory owned by someone else. One row per sample: a batch of N
 * vectors of length D has rank 2 and shape {N, D}. Inputs are never written. `data` points to elements
 * of `dtype` (always FLOAT32 in ABI 1.0). */
typedef struct ansatz_tensor
{
    float* data;
    int32_t rank;
    int32_t dtype; /* ansatz_dtype */
    int64_t shape[ANSATZ_MAX_RANK];
} ansatz_tensor;

/* A parameter (or gradient, or optimizer state) with the name it is saved under. */
typedef struct ansatz_named_tensor
{
    const char* name;
    ansatz_tensor tensor;
} ansatz_named_tensor;

/* A scalar a component reports (metrics.csv column `name`); the name points to static storage. */
typedef struct ansatz_metric
{
    const char* name;
    double value;
} ansatz_metric;

#define ANSATZ_MAX_METRICS 16

typedef struct ansatz_metrics
{
    int32_t count;
    int32_t reserved_;
    ansatz_metric items[ANSATZ_MAX_METRICS];
} ansatz_metrics;

/* ---------------------------------------------------------------- randomness ------------------ */

/* The state of one random stream: xoshiro256** (Blackman & Vigna). The algorithm is part of the
 * contract, so the host and every plugin draw the same numbers from the same state; ansatz/random.hpp
 * implements it. A stream is derived from the pipeline's seed and a name, never from a global.
 *
 * Calls on chains (random_state, conditional, advance) take one stream per row: `rngs` points to N
 * states for a batch of N rows, and row n draws only from rngs[n]. A chain's trajectory then depends
 * on its own stream alone, not on how many chains run beside it or how rows are split across threads.
 * Other calls (setup, a loss's compute, a dataset's read) take one stream. */
typedef struct ansatz_rng
{
    uint64_t state[4];
} ansatz_rng;

/* ---------------------------------------------------------------- configuration --------------- */

typedef enum ansatz_param_type
{
    ANSATZ_PARAM_BOOL = 1,
    ANSATZ_PARAM_INT = 2,
    ANSATZ_PARAM_FLOAT = 3,
    ANSATZ_PARAM_STRING = 4,
    ANSATZ_PARAM_PATH = 5,   /* a string; the host resolves it relative to the pipeline file */
    ANSATZ_PARAM_CHOICE = 6, /* a string from `choices` */
} ansatz_param_type;

typedef enum ansatz_param_flag
{
    ANSATZ_PARAM_REQUIRED = 1u << 0, /* no default; the pipeline must give it */
    ANSATZ_PARAM_HAS_MIN = 1u << 1,
    ANSATZ_PARAM_HAS_MAX = 1u << 2,
    ANSATZ_PARAM_MIN_EXCLUSIVE = 1u << 3,
    ANSATZ_PARAM_MAX_EXCLUSIVE = 1u << 4,
    ANSATZ_PARAM_MUST_EXIST = 1u << 5, /* PATH: the file must exist when the pipeline is validated */
    ANSATZ_PARAM_OPTIONAL = 1u << 6,   /* no default, may be absent */
} ansatz_param_flag;

/* One key of a component's configuration: validated, documented and defaulted by one declaration. */
typedef struct ansatz_param_spec
{
    uint32_t struct_size;
    int32_t type;   /* ansatz_param_type */
    uint32_t flags; /* ansatz_param_flag bits */
    int32_t reserved_;
    const char* name;
    const char* doc;           /* one line */
    const char* default_value; /* as YAML text; NULL when REQUIRED or OPTIONAL */
    const char* choices;       /* CHOICE: the values separated by '|' */
    double min;
    double max;
    void* reserved[4];
} ansatz_param_spec;

/* One validated value. `text` holds STRING, PATH and CHOICE values (paths already resolved). The
 * reserved room is for list values (e.g. a lattice shape) that a later minor adds as new types. */
typedef struct ansatz_value
{
    const char* name;
    int32_t type; /* ansatz_param_type */
    int32_t present;
    int64_t integer; /* BOOL (0/1) and INT */
    double real;     /* FLOAT */
    const char* text;
    void* reserved[4];
} ansatz_value;

/* The configuration a component is created with: every declared key, defaults filled in. It lives
 * only during `create`: a component copies what it keeps. `values` is an array of `count` elements of
 * `value_size` bytes each (step by value_size: a newer host's ansatz_value may be larger). */
typedef struct ansatz_config
{
    uint32_t struct_size;
    int32_t count;
    const ansatz_value* values;
    const char* instance_name; /* the component's name in the pipeline, for messages */
    uint32_t value_size;       /* sizeof(ansatz_value) as the host was built */
    int32_t reserved_;
    void* reserved[4];
} ansatz_config;

/* ---------------------------------------------------------------- host services --------------- */

typedef enum ansatz_log_level
{
    ANSATZ_LOG_DEBUG = 0,
    ANSATZ_LOG_INFO = 1,
    ANSATZ_LOG_WARNING = 2,
    ANSATZ_LOG_ERROR = 3,
} ansatz_log_level;

/* What the host lends a component for its whole life. Plugins link nothing from the executable. */
typedef struct ansatz_host
{
    uint32_t struct_size;
    int32_t threads; /* the pipeline's thread budget; BLAS is already set to it */
    void* context;
    void (*log)(void* context, int32_t level, const char* message);
    int32_t (*cancelled)(void* context); /* non-zero when the run should stop */
    /* The stream `name` of this run: derived from the pipeline's seed and the name, independent of
     * every other name. A component takes its initialisation stream from here. */
    void (*stream)(void* context, const char* name, ansatz_rng* out);
    void* reserved[8];
} ansatz_host;

/* ---------------------------------------------------------------- components ------------------ */

typedef enum ansatz_kind
{
    ANSATZ_KIND_MODEL = 1,
    ANSATZ_KIND_SAMPLER = 2,
    ANSATZ_KIND_LOSS = 3,
    ANSATZ_KIND_OPTIMIZER = 4,
    ANSATZ_KIND_DATASET = 5,
} ansatz_kind;

/* Which tables a model fills (ansatz_component.capabilities for a model), or which it must fill
 * (for a sampler or a loss): a missing capability is refused when the pipeline is validated. */
typedef enum ansatz_capability
{
    ANSATZ_CAP_ENERGY = 1u << 0,       /* unnormalised density and local energy differences */
    ANSATZ_CAP_CONDITIONALS = 1u << 1, /* block conditionals, for Gibbs */
    ANSATZ_CAP_LATENT = 1u << 2,       /* encoder/decoder with backward passes, for the ELBO */
} ansatz_capability;

/* ansatz_component.flags */
typedef enum ansatz_component_flag
{
    ANSATZ_LOSS_NEEDS_SAMPLER = 1u << 0, /* a loss that estimates a negative phase with MCMC */
} ansatz_component_flag;

/* Blocks of a model with conditionals: the visible units and the hidden units. */
typedef enum ansatz_block
{
    ANSATZ_BLOCK_VISIBLE = 0,
    ANSATZ_BLOCK_HIDDEN = 1,
} ansatz_block;

/* ---- model ---- */

/* capability ENERGY. F is the free energy: p(v) = exp(-F(v)) / Z. For a model without latent
 * variables F is the energy itself. */
typedef struct ansatz_energy_table
{
    uint32_t struct_size;
    /* out[n] = F(v[n]); v {N, D}, out {N}. */
    int32_t (*free_energy)(void* self, const ansatz_tensor* v, ansatz_tensor* out, ansatz_status* st);
    /* grads[k] += scale * sum_n dF(v[n]) / dtheta_k, for every parameter k in parameters() order;
     * when out is not NULL, also out[n] = F(v[n]) (a value and its gradient from one pass). */
    int32_t (*free_energy_grad)(void* self, const ansatz_tensor* v, float scale, ansatz_tensor* grads,
                                int32_t n_grads, ansatz_tensor* out, ansatz_status* st);
    /* out[n] = F(v[n] with unit sites[n] set to new_values[n]) - F(v[n]): one proposed local change in
     * every chain (a flip of a {0,1} unit or a +-1 spin, a Gaussian unit's move, a Potts colour). The
     * model checks that the new value is in its support. v {N, D}; sites, new_values and out {N}. */
    int32_t (*energy_delta)(void* self, const ansatz_tensor* v, const int64_t* sites, const float* new_values,
                            ansatz_tensor* out, ansatz_status* st);
    void* reserved[8];
} ansatz_energy_table;

/* capability CONDITIONALS: p(block | the other block) factorises over the block's units. */
typedef struct ansatz_conditionals_table
{
    uint32_t struct_size;
    /* Units in a block (the visible count is the sample size). */
    int64_t (*block_size)(void* self, int32_t block);
    /* mean[n] = E[block | given[n]]; when sample is not NULL, also draw sample[n] ~ p(block | given[n])
     * from rngs[n] (N streams; may be NULL when sample is). given {N, size of the other block}; mean and
     * sample {N, size of block}. */
    int32_t (*conditional)(void* self, int32_t block, const ansatz_tensor* given, ansatz_tensor* mean,
                           ansatz_tensor* sample, ansatz_rng* rngs, ansatz_status* st);
    void* reserved[8];
} ansatz_conditionals_table;

/* capability LATENT: an encoder Q(h|x) = N(mu(x), diag(exp(log_var(x)))) and a decoder p(x|h), each
 * with its backward pass, for the ELBO. Rows pair up: row n of h goes with row n of x (several latent
 * samples of one x are several rows repeating x). No call keeps state for a later one: a backward pass
 * recomputes what it needs from its inputs (a model may cache the last forward pass of the same x).
 * grads are all the model's parameters in parameters() order; each backward adds only to its half. */
typedef struct ansatz_latent_table
{
    uint32_t struct_size;
    /* L, the latent dimension; -1 on failure. */
    int64_t (*latent_size)(void* self);
    /* mu[n], log_var[n] of Q(h | x[n]); x {N, D}, mu and log_var {N, L}. */
    int32_t (*encode)(void* self, const ansatz_tensor* x, ansatz_tensor* mu, ansatz_tensor* log_var,
                      ansatz_status* st);
    /* grads += scale * sum_n (d_mu[n] . dmu(x[n])/dtheta + d_log_var[n] . dlog_var(x[n])/dtheta). */
    int32_t (*encode_backward)(void* self, const ansatz_tensor* x, const ansatz_tensor* d_mu,
                               const ansatz_tensor* d_log_var, float scale, ansatz_tensor* grads,
                               int32_t n_grads, ansatz_status* st);
    /* out[n] = log p(x[n] | h[n]); h {N, L}, x {N, D}, out {N}. */
    int32_t (*decode_log_likelihood)(void* self, const ansatz_tensor* h, const ansatz_tensor* x,
                                     ansatz_tensor* out, ansatz_status* st);
    /* grads += scale * sum_n dlog p(x[n] | h[n])/dtheta; when d_h is not NULL, also
     * d_h[n] = scale * dlog p(x[n] | h[n])/dh[n] (for the reparameterisation h = mu + exp(log_var/2) eps). */
    int32_t (*decode_backward)(void* self, const ansatz_tensor* h, const ansatz_tensor* x, float scale,
                               ansatz_tensor* d_h, ansatz_tensor* grads, int32_t n_grads, ansatz_status* st);
    /* x_mean[n] = E[x | h[n]], for pictures of samples and reconstructions. */
    int32_t (*decode_mean)(void* self, const ansatz_tensor* h, ansatz_tensor* x_mean, ansatz_status* st);
    void* reserved[8];
} ansatz_latent_table;

typedef struct ansatz_model_table
{
    uint32_t struct_size;
    /* Called once, before any other call of the table: allocates and initialises the parameters for
     * samples of this shape (one sample, without the batch axis). A restored model is set up first,
     * then its parameters are overwritten through the views of parameters(). */
    int32_t (*setup)(void* self, const int64_t* sample_shape, int32_t rank, ansatz_rng* rng,
                     ansatz_status* st);
    /* Views of the model's own parameters, valid until the next setup or destroy; returns the count
     * (-1 on failure). With out == NULL it only counts. */
    int32_t (*parameters)(void* self, ansatz_named_tensor* out, int32_t capacity);
    /* Draws states from a simple distribution over the model's support (chains' starting points):
     * out[n] from rngs[n], out {N, D}, N streams. */
    int32_t (*random_state)(void* self, ansatz_tensor* out, ansatz_rng* rngs, ansatz_status* st);
    const ansatz_energy_table* energy;             /* NULL unless ANSATZ_CAP_ENERGY */
    const ansatz_conditionals_table* conditionals; /* NULL unless ANSATZ_CAP_CONDITIONALS */
    const ansatz_latent_table* latent;             /* NULL unless ANSATZ_CAP_LATENT */
    void* reserved[8];
} ansatz_model_table;

/* A model as another component sees it: its table and its instance. */
typedef struct ansatz_model_handle
{
    const ansatz_model_table* table;
    void* self;
} ansatz_model_handle;

/* ---- sampler ---- */

typedef struct ansatz_sampler_table
{
    uint32_t struct_size;
    /* The model the sampler draws from; it outlives the sampler. */
    int32_t (*bind)(void* self, const ansatz_model_handle* model, ansatz_status* st);
    /* Advances every chain (a row of `chains`, {N, D}) in place by `steps` sweeps (0 = the sampler's
     * configured number), chain n drawing from rngs[n] (N streams). */
    int32_t (*advance)(void* self, ansatz_tensor* chains, int32_t steps, ansatz_rng* rngs, ansatz_status* st);
    /* Diagnostics since the last call (acceptance rate, ...). */
    int32_t (*metrics)(void* self, ansatz_metrics* out, ansatz_status* st);
    void* reserved[8];
} ansatz_sampler_table;

typedef struct ansatz_sampler_handle
{
    const ansatz_sampler_table* table;
    void* self;
} ansatz_sampler_handle;

/* ---- loss ---- */

typedef struct ansatz_loss_table
{
    uint32_t struct_size;
    /* sampler is NULL unless the component has ANSATZ_LOSS_NEEDS_SAMPLER. */
    int32_t (*bind)(void* self, const ansatz_model_handle* model, const ansatz_sampler_handle* sampler,
                    ansatz_status* st);
    /* Adds the gradient of the loss (to be minimised) on this batch to grads, in parameters() order,
     * and reports the loss and other scalars. batch {N, D}. */
    int32_t (*compute)(void* self, const ansatz_tensor* batch, ansatz_tensor* grads, int32_t n_grads,
                       ansatz_rng* rng, ansatz_metrics* out, ansatz_status* st);
    void* reserved[8];
} ansatz_loss_table;

/* ---- optimizer ---- */

typedef struct ansatz_optimizer_table
{
    uint32_t struct_size;
    /* The parameters it will update; it allocates its state for them. */
    int32_t (*bind)(void* self, const ansatz_named_tensor* params, int32_t n_params, ansatz_status* st);
    /* params[k] -= update(grads[k]); called once per batch. */
    int32_t (*step)(void* self, ansatz_named_tensor* params, const ansatz_tensor* grads, int32_t n_params,
                    ansatz_status* st);
    /* Views of its state (momentum buffers, ...) for checkpoints; returns the count. */
    int32_t (*state)(void* self, ansatz_named_tensor* out, int32_t capacity);
    void* reserved[8];
} ansatz_optimizer_table;

/* ---- dataset ---- */

typedef struct ansatz_dataset_info
{
    uint32_t struct_size;
    int32_t sample_rank; /* shape of one sample, without the batch axis */
    int64_t sample_shape[ANSATZ_MAX_RANK];
    int64_t count;
    int32_t has_labels;
    int32_t is_image; /* sample_shape is {H, W} or {H, W, C} with values in [0, 1] */
    void* reserved[4];
} ansatz_dataset_info;

typedef struct ansatz_dataset_table
{
    uint32_t struct_size;
    int32_t (*info)(void* self, ansatz_dataset_info* out, ansatz_status* st);
    /* out[i] = sample indices[i], flattened: out {n, prod(sample_shape)}; labels (n floats) may be NULL.
     */
    int32_t (*read)(void* self, const int64_t* indices, int64_t n, ansatz_tensor* out, float* labels,
                    ansatz_rng* rng, ansatz_status* st);
    void* reserved[8];
} ansatz_dataset_table;

/* ---------------------------------------------------------------- descriptor ------------------ */

typedef struct ansatz_component
{
    uint32_t struct_size;
    int32_t kind; /* ansatz_kind */
    const char* name;
    const char* summary; /* one line */
    const ansatz_param_spec* params;
    int32_t n_params;
    uint32_t capabilities; /* model: the tables it fills; sampler, loss: what it needs of the model */
    uint32_t flags;        /* ansatz_component_flag */
    int32_t reserved_;
    /* Returns NULL and fills st on failure. */
    void* (*create)(const ansatz_config* config, const ansatz_host* host, ansatz_status* st);
    void (*destroy)(void* self);
    /* ansatz_model_table, ansatz_sampler_table, ... as `kind` says. */
    const void* table;
    void* reserved[8];
} ansatz_component;

typedef struct ansatz_plugin_desc
{
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t struct_size; /* sizeof(ansatz_plugin_desc) as the plugin was built */
    int32_t n_components;
    const char* name;
    const char* version;
    const char* license;
    const char* build; /* compiler, flags, xtensor/xsimd settings: shown, not enforced */
    const ansatz_component* components;
    void* reserved[8];
} ansatz_plugin_desc;

typedef const ansatz_plugin_desc* (*ansatz_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* ANSATZ_ABI_H */
