/*
 * ansatz/abi.h -- the binary contract between the `ansatz` host and its plugins, ABI 2.x.
 *
 * Everything that crosses a library boundary is declared here, in plain C: sized integers,
 * `const char*`, tensor views, status structs and tables of function pointers. No C++ type ever
 * crosses, because xtensor's container types change with XTENSOR_USE_XSIMD, -march and the default
 * layout, and the standard library's with the compiler: two modules built differently would agree
 * on a name and disagree on a layout, silently.
 *
 * ---- Versions (as GStreamer's GstPluginDesc) ----
 * A plugin is loaded when its ABI major equals the host's and its minor is not newer. 2.0 broke 1.x
 * once, on purpose; within 2.x the contract only grows:
 *   - Structs that start with `struct_size` (descriptor, component, tables, parameter specs, config,
 *     host, sample and dataset info, progress) may gain fields at their end or in their reserved
 *     room in a later minor. A reader touches a field only when `struct_size` says the writer had it;
 *     the host accepts the struct size of every 2.x minor back to 2.0 and treats a field the writer
 *     did not have as absent (NULL, 0). Arrays are stepped by their element's `struct_size` (or the
 *     config's `value_size`), never by the reader's own sizeof.
 *   - Value structs without `struct_size` (status, tensor, named tensor, rng, handle, metrics sink)
 *     are fixed for the whole major: their reserved room is for 3.0.
 *   - Reserved room is zero, and a NULL function pointer or table means "absent": a writer leaves
 *     what it does not fill zeroed, and a reader never calls a NULL slot. The host checks both for
 *     what it reads of a plugin's descriptor.
 *   - Functions that few components have are found by name through `ansatz_component.extension`
 *     (as ggml's get_proc_address), not in a slot of their own.
 *
 * ---- What each minor added ----
 *   2.0: the contract below, minus what later minors add.
 *   2.1: evaluators (ANSATZ_KIND_EVALUATOR, ansatz_evaluator_table); models' tempered functions
 *        (ANSATZ_FN_TEMPERED: tempered_free_energy, base_log_partition and, for a model with
 *        conditionals, tempered_conditional), the block free energy (ANSATZ_FN_BLOCK_FREE_ENERGY)
 *        and the weighted free-energy gradient (ANSATZ_FN_WEIGHTED_GRAD), each in what was reserved room of
 * the energy and conditionals tables, so those tables keep their 2.0 size. 2.2: samplers' advance_tempered
 * (in the sampler table's reserved room); models' local-move session (ANSATZ_FN_LOCAL_MOVES: local_begin,
 * local_commit, local_end, which change what energy_delta computes while a session is open) and the state
 * gradient (ANSATZ_FN_STATE_GRAD: free_energy_grad_state), in the energy table's reserved room. Sizes stay
 * those of 2.0. A plugin built for an older minor has these slots zeroed (they were reserved room): it reads
 * as not having them, and the host refuses one whose older-minor reserved room is not zero. Also the latent
 * table's decode_backward_weighted (per-row weights, the values of the same pass: the IWAE gradient), the
 * latent call order and the prior stated as N(0, I), and the dataset info's label_names, each in what was
 * reserved room.
 *   2.3: models' parameters_changed (in the model table's reserved room): the host says when it has
 *        written a model's parameters, so a model may keep what it derives from them until then.
 *   2.4: models' local_step (ANSATZ_FN_LOCAL_STEP, in the energy table's last reserved slot):
 *        rounds of single-site Metropolis in a local-move session in one call (accept, write,
 *        commit). The energy table has no reserved room left: what it gains later in 2.x goes
 *        through `extension`.
 *   2.5: the sample info's `low` and `high` (in its reserved room): the box of a REAL model's
 *        variables, e.g. images in [-1, 1] for a neural energy, so a sampler clamps to the model's
 *        domain instead of a key of its own.
 *
 * ---- Lifecycle (as GStreamer's element states, written down once) ----
 *   1. load: the host calls the entry symbol once and checks the descriptor (never calls it again).
 *   2. create(config, host): one instance per pipeline component. The config lives only during
 *      create: copy what you keep. The host pointer lives as long as the instance. A model's
 *      `sample_info` may be asked from here on.
 *   3. setup (models): once, before any other call of the model's table but sample_info; allocates
 *      and initialises the parameters from the stream "components.<name>.init".
 *   4. bind (samplers, losses, optimizers): at the start of every stage that uses the component, with
 *      the handles it works on for that stage. Handles stay valid until the next bind or destroy (the
 *      host keeps every model and sampler alive while anything bound to it lives); a component may
 *      keep them, not the structs they were passed in (copy the handle, not its address).
 *   5. set_state: only when a run is resumed, with the names, dtypes and shapes the same component's
 *      state() gave when the checkpoint was written; the component copies the values. A component the
 *      resumed stage uses (named by its keys, or by a key of a component it uses) gets it after that
 *      stage's bind; any other right after create, before any bind (keep it for the next bind).
 *   6. calls: advance, compute, step, read, metrics, state, ... as often as the stage needs.
 *   7. destroy: once, in the reverse order of creation. Whatever a plugin allocated, it frees here.
 * No component is ever called concurrently, by anyone: the host calls one instance from one thread
 * at a time (components call each other only from inside a call the host made). A component may run
 * threads of its own inside a call, within the host's `threads` budget, and may call the host's
 * functions from any of them.
 *
 * ---- Calls ----
 *   - Value-only: a call reads its inputs and writes its outputs during the call; it keeps no pointer
 *     into a caller's tensor after it returns. Views a component returns point into its own memory:
 *     a model's parameters() views stay valid until its next setup or destroy (an optimizer updates
 *     the parameters through them in place); state() views only until the component's next call
 *     other than state().
 *   - Who writes a model's parameters: only the host, directly (a checkpoint restored, a load stage)
 *     or through the optimizer's step it calls; then, before the model's next call, it calls the
 *     model's parameters_changed (2.3, when not NULL). No other component writes them. A program that
 *     drives plugins itself (a test, a harness) and writes them through the views does the same.
 *   - Inputs are never written. Outputs are preallocated by the caller with the shapes documented.
 *   - Errors: every call that can fail takes an `ansatz_status*` and returns its `code`; calls that
 *     return a count return -1 on failure and fill the status too.
 *   - Batches: every call works on a whole batch or all chains at once (one row per sample), so one
 *     indirect call is amortised over BLAS-sized work.
 *   - Cancellation: a call that may run long (advance with many steps, a dataset's first read) asks
 *     host->cancelled() between units of work and, when it is set, returns ANSATZ_STATUS_CANCELLED
 *     promptly, leaving its state consistent (the host then keeps the last checkpoint). The host
 *     slices long work itself (the sample stage calls advance with at most 1000 steps per call), so a
 *     sampler need not check more often than once per sweep.
 *
 * ---- Randomness ----
 * Every stream is xoshiro256** (ansatz/random.hpp), derived from the pipeline's seed and a name by
 * host->stream(). The host passes: "components.<name>.init" to a model's setup; for stage i,
 * "stages.<i>.train.order" (the data order), ".data" (dataset reads), ".loss" (the loss's compute),
 * "stages.<i>.sample.init" and ".chains" (split into one stream per chain; for a latent model sampled
 * without a sampler, chain n's h ~ N(0, I) is drawn from the n-th), "stages.<i>.generate.beta<b>.init"
 * and ".chains" (the same, per inverse temperature b), "stages.<i>.latent.data" (the latent stage's
 * read of its data), and to an evaluator's evaluate "stages.<i>.evaluate.<name>" (in a train stage
 * "stages.<i>.train.evaluate.<name>.epoch<E>", a fresh one per evaluation). Calls on chains
 * (random_state, conditional, advance) take one stream per row: `rngs` points to N states for N rows
 * and row n draws only from rngs[n], so a chain's trajectory never depends on how many chains run
 * beside it. A component that needs streams of its own splits them from the stream it was passed
 * (ansatz::split) and saves them in its state. A loss or evaluator whose draws belong to rows (the
 * ELBO's eps, the IWAE's samples) splits the stream it was passed into one stream per row of its batch
 * or data (row n draws from the n-th child only), so its result does not depend on how it chunks the
 * rows or on its threads.
 */
#ifndef ANSATZ_ABI_H
#define ANSATZ_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ANSATZ_ABI_MAJOR 2
#define ANSATZ_ABI_MINOR 5

/* The one symbol a plugin exports; its type is ansatz_plugin_entry_fn. The name never changes: every
 * major's descriptor starts with abi_major and abi_minor, so a host can name the version of a plugin
 * it refuses. */
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

/* Element types of a tensor view. Models compute in FLOAT32; the others carry exact state (step
 * counts, random streams as UINT64 {N, 4}, flags) and data that is not float. */
typedef enum ansatz_dtype
{
    ANSATZ_DTYPE_FLOAT32 = 0,
    ANSATZ_DTYPE_FLOAT64 = 1,
    ANSATZ_DTYPE_INT64 = 2,
    ANSATZ_DTYPE_UINT64 = 3,
    ANSATZ_DTYPE_UINT8 = 4,
} ansatz_dtype;

/* Where the elements live. 2.x passes host memory only; the field is the room for a device path. */
typedef enum ansatz_device
{
    ANSATZ_DEVICE_HOST = 0,
} ansatz_device;

/* A view of contiguous, row-major memory owned by someone else. One row per sample: a batch of N
 * vectors of length D has rank 2 and shape {N, D}. `data` points to elements of `dtype`. */
typedef struct ansatz_tensor
{
    void* data;
    int32_t dtype;  /* ansatz_dtype */
    int32_t rank;   /* 0 ... ANSATZ_MAX_RANK */
    int32_t device; /* ansatz_device */
    int32_t device_index;
    int64_t shape[ANSATZ_MAX_RANK];
    void* reserved[2];
} ansatz_tensor;

/* A parameter, gradient or piece of state with the name it is saved under (letters, digits, '_', '.',
 * '-'; unique within its component). The name points to storage of the component that gave it. */
typedef struct ansatz_named_tensor
{
    const char* name;
    ansatz_tensor tensor;
} ansatz_named_tensor;

/* ---------------------------------------------------------------- metrics --------------------- */

/* How a component reports named scalars (metrics.csv columns): it calls add() once per scalar. The
 * host copies the name (1 to 63 characters: letters, digits, '_', '.') during the call, so it may
 * point to a temporary. The host accepts at least ANSATZ_MAX_METRICS per call; add returns 0, or -1
 * for a bad name or one too many (the C++ layer turns that into an error). */
#define ANSATZ_MAX_METRICS 64
#define ANSATZ_METRIC_NAME_SIZE 64

typedef struct ansatz_metrics
{
    void* context;
    int32_t (*add)(void* context, const char* name, double value);
    void* reserved[2];
} ansatz_metrics;

/* ---------------------------------------------------------------- randomness ------------------ */

/* The state of one random stream: xoshiro256** (Blackman & Vigna); see the Randomness paragraph. */
typedef struct ansatz_rng
{
    uint64_t state[4];
} ansatz_rng;

/* ---------------------------------------------------------------- components ------------------ */

typedef enum ansatz_kind
{
    ANSATZ_KIND_MODEL = 1,
    ANSATZ_KIND_SAMPLER = 2,
    ANSATZ_KIND_LOSS = 3,
    ANSATZ_KIND_OPTIMIZER = 4,
    ANSATZ_KIND_DATASET = 5,
    ANSATZ_KIND_EVALUATOR = 6, /* 2.1 */
} ansatz_kind;

/* Any created component: what a configuration key of type COMPONENT carries (cast `table` by kind). */
typedef struct ansatz_handle
{
    int32_t kind; /* ansatz_kind */
    int32_t reserved_;
    const void* table;
    void* self;
} ansatz_handle;

/* ---------------------------------------------------------------- configuration --------------- */

typedef enum ansatz_param_type
{
    ANSATZ_PARAM_BOOL = 1,
    ANSATZ_PARAM_INT = 2,
    ANSATZ_PARAM_FLOAT = 3,
    ANSATZ_PARAM_STRING = 4,
    ANSATZ_PARAM_PATH = 5,        /* a string; the host resolves it relative to the pipeline file */
    ANSATZ_PARAM_CHOICE = 6,      /* a string from `choices` */
    ANSATZ_PARAM_INT_LIST = 7,    /* a YAML list of ints; min/max bound every item */
    ANSATZ_PARAM_FLOAT_LIST = 8,  /* a YAML list of floats; min/max bound every item */
    ANSATZ_PARAM_STRING_LIST = 9, /* a YAML list of strings */
    ANSATZ_PARAM_COMPONENT = 10,  /* the name of another component of the pipeline, of component_kind */
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
    ANSATZ_PARAM_DOUBLE = 1u << 7,     /* FLOAT: kept as a double (else it must fit a float32) */
} ansatz_param_flag;

/* One key of a component's configuration: validated, documented and defaulted by one declaration. */
typedef struct ansatz_param_spec
{
    uint32_t struct_size;
    int32_t type;           /* ansatz_param_type */
    uint32_t flags;         /* ansatz_param_flag bits */
    int32_t component_kind; /* COMPONENT: the ansatz_kind the named component must have */
    const char* name;
    const char* doc;           /* one line */
    const char* default_value; /* as YAML text (a list as "[1, 2]"); NULL when REQUIRED or OPTIONAL */
    const char* choices;       /* CHOICE: the values separated by '|' */
    double min;                /* numbers and the items of number lists */
    double max;
    int64_t min_length;       /* lists: fewest items (0: no minimum) */
    int64_t max_length;       /* lists: most items (0: no maximum) */
    uint64_t component_needs; /* COMPONENT naming a model: the ansatz_model_function bits it must have */
    void* reserved[4];
} ansatz_param_spec;

/* One validated value. Lists point to `count` items owned by the host; a COMPONENT value carries the
 * named component's handle (created before this one, destroyed after it) and its name in `text`. */
typedef struct ansatz_value
{
    const char* name;
    int32_t type; /* ansatz_param_type */
    int32_t present;
    int64_t integer;          /* BOOL (0/1) and INT */
    double real;              /* FLOAT */
    const char* text;         /* STRING, PATH (resolved), CHOICE, COMPONENT (its name) */
    int64_t count;            /* lists: the number of items */
    const int64_t* integers;  /* INT_LIST */
    const double* reals;      /* FLOAT_LIST */
    const char* const* texts; /* STRING_LIST */
    ansatz_handle component;  /* COMPONENT */
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

/* Where the run is, for schedules (a learning rate that decays per epoch, an annealed temperature).
 * Counters are 0 before the first stage; `step` counts the batches of the current stage. */
typedef struct ansatz_progress
{
    uint32_t struct_size;
    int32_t stage;           /* 1-based index of the running stage in `stages:` */
    int64_t epoch;           /* 1-based epoch of a train stage (0 in other stages) */
    int64_t epochs;          /* epochs the stage will run */
    int64_t step;            /* train: batches done in this stage, over all epochs; sample: sweeps done */
    int64_t steps_per_epoch; /* train: batches per epoch (0 in other stages) */
    void* reserved[4];
} ansatz_progress;

/* What the host lends a component for its whole life. Plugins link nothing from the executable. */
typedef struct ansatz_host
{
    uint32_t struct_size;
    int32_t threads; /* the run's thread budget; BLAS is already set to it */
    void* context;
    void (*log)(void* context, int32_t level, const char* message);
    int32_t (*cancelled)(void* context); /* non-zero when the run should stop */
    /* The stream `name` of this run: derived from the pipeline's seed and the name, independent of
     * every other name (see Randomness). */
    void (*stream)(void* context, const char* name, ansatz_rng* out);
    /* Fills out (struct_size set by the caller) with where the run is. */
    void (*progress)(void* context, ansatz_progress* out);
    /* Bytes of memory this machine has: a component refuses a configuration that cannot fit. */
    int64_t memory_bytes;
    void* reserved[8];
} ansatz_host;

/* ---------------------------------------------------------------- models ---------------------- */

/* The functions of a model's tables, as bits: a sampler or loss declares the ones it calls
 * (ansatz_component.needs), the host derives the ones a model has from its non-NULL slots, and a
 * pipeline that pairs them wrongly is refused when it is validated. */
typedef enum ansatz_model_function
{
    ANSATZ_FN_FREE_ENERGY = 1u << 0,
    ANSATZ_FN_FREE_ENERGY_GRAD = 1u << 1,
    ANSATZ_FN_ENERGY_DELTA = 1u << 2,
    ANSATZ_FN_CONDITIONAL = 1u << 3, /* block_size and conditional */
    ANSATZ_FN_LATENT = 1u << 4,      /* the whole latent table */
    /* 2.1 */
    /* tempered_free_energy and base_log_partition; for a model with conditionals also
     * tempered_conditional (a model without them, such as an Ising model, has none to temper) */
    ANSATZ_FN_TEMPERED = 1u << 5,
    ANSATZ_FN_BLOCK_FREE_ENERGY = 1u << 6, /* block_free_energy */
    ANSATZ_FN_WEIGHTED_GRAD = 1u << 7,     /* free_energy_grad_weighted */
    /* 2.2 */
    ANSATZ_FN_LOCAL_MOVES = 1u << 8, /* local_begin, local_commit, local_end (with energy_delta) */
    ANSATZ_FN_STATE_GRAD = 1u << 9,  /* free_energy_grad_state */
    /* 2.4 */
    ANSATZ_FN_LOCAL_STEP = 1u << 10, /* local_step (a model with it has LOCAL_MOVES too) */
} ansatz_model_function;

/* The values a model's variables take (visible and, for a model with conditionals, hidden units
 * alike). A model that declares none is BINARY. */
typedef enum ansatz_domain
{
    ANSATZ_DOMAIN_BINARY = 0,      /* {0, 1} */
    ANSATZ_DOMAIN_SPIN = 1,        /* {-1, +1} */
    ANSATZ_DOMAIN_REAL = 2,        /* the reals */
    ANSATZ_DOMAIN_CATEGORICAL = 3, /* {0, ..., categories - 1} */
} ansatz_domain;

/* What a model says about its samples, before setup. */
typedef struct ansatz_sample_info
{
    uint32_t struct_size;
    int32_t rank; /* -1: the shape comes from the data; else shape[0..rank) is fixed by the config */
    int64_t shape[ANSATZ_MAX_RANK];
    int32_t domain;     /* ansatz_domain */
    int32_t categories; /* CATEGORICAL: K */
    /* 2.5, REAL: the box every variable lies in, low < high (either may be infinite: -HUGE_VAL, HUGE_VAL);
     * samplers keep their chains in it (a Langevin move clamps to it), random_state draws in it, and
     * images of samples map it to black..white. Both 0 (what a plugin before 2.5 leaves, as reserved
     * room): the whole real line. The host refuses bounds on another domain, NaN, or low >= high. */
    double low, high;
    void* reserved[2];
} ansatz_sample_info;

/* Blocks of a model with conditionals: the visible units and the hidden units. */
typedef enum ansatz_block
{
    ANSATZ_BLOCK_VISIBLE = 0,
    ANSATZ_BLOCK_HIDDEN = 1,
} ansatz_block;

/* F is the free energy: p(v) = exp(-F(v)) / Z. For a model without latent variables F is the energy. */
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
     * model checks that the new value is in its domain. v {N, D}; sites, new_values and out {N}. */
    int32_t (*energy_delta)(void* self, const ansatz_tensor* v, const int64_t* sites, const float* new_values,
                            ansatz_tensor* out, ansatz_status* st);
    /* 2.1, WEIGHTED_GRAD: grads[k] += sum_n weights[n] * dF(v[n]) / dtheta_k (weights {N}); out as in
     * free_energy_grad. One pass over rows of both signs: a loss stacks data (weight -1/B) and chains
     * (+1/M) into one batch, so the products are larger and run nearer the sgemm rate. */
    int32_t (*free_energy_grad_weighted)(void* self, const ansatz_tensor* v, const float* weights,
                                         ansatz_tensor* grads, int32_t n_grads, ansatz_tensor* out,
                                         ansatz_status* st);
    /* 2.1, TEMPERED (with base_log_partition, and with the conditionals' tempered_conditional exactly
     * when the model has conditionals: the host refuses a model that has some of these without the
     * others it needs). The tempered
     * family of a model with energy E(v, h) = E0(v) + E1(v, h), at inverse temperature beta in [0, 1]
     * and with an external field phi on the visible units, is
     *     E_beta,phi(v, h) = E0(v) + beta * E1(v, h) - phi . v,
     * where E0 is the part kept at every beta so that beta = 0 is a product distribution whose
     * normaliser the model knows: E0 = 0 for binary, spin and categorical visible units (beta
     * multiplies the whole energy, as in Salakhutdinov & Murray 2008), the confinement
     * sum_i (v_i - a_i)^2 / 2 sigma_i^2 for Gaussian ones. beta = 1 with phi = 0 is the model.
     * out[n] = F_beta[n],phi(v[n]) = -log sum_h exp(-E_beta[n],phi(v[n], h)) (the energy itself for a
     * model without hidden units); v {N, D}, beta {N}, field {D} or NULL (phi = 0), out {N} FLOAT64:
     * annealed importance sampling sums thousands of differences of these values. */
    int32_t (*tempered_free_energy)(void* self, const ansatz_tensor* v, const double* beta,
                                    const ansatz_tensor* field, ansatz_tensor* out, ansatz_status* st);
    /* 2.1, TEMPERED: *out = log Z_0,phi = log sum_{v,h} exp(-E_0,phi(v, h)), the normaliser at beta = 0
     * (for binary units sum_i log(1 + e^phi_i) + H log 2). field {D} or NULL. */
    int32_t (*base_log_partition)(void* self, const ansatz_tensor* field, double* out, ansatz_status* st);
    /* 2.2, LOCAL_MOVES (local_begin, local_commit and local_end come together, with energy_delta): a
     * session in which one proposed change of one site per chain costs what that site touches (an RBM:
     * O(H) from cached hidden pre-activations, instead of O(D H)), for single-site Metropolis-Hastings.
     * F_beta below is the free energy of the tempered family with field 0 (tempered_free_energy's
     * F_beta,0, E_beta = E0 + beta E1); a model that keeps no E0 (binary, spin and categorical units) and
     * has no hidden units has F_beta = beta F, whether or not it fills the tempered slots. F_1 = F.
     * Call order (one session per model at a time):
     *   1. local_begin(v, beta): the model caches what it needs of the chains v {N, D} (FLOAT32) at the
     *      inverse temperatures beta {N} (NULL: every row at 1). A local_begin while a session is open
     *      ends that session first.
     *   2. any number of rounds of:
     *      a. energy_delta(v, sites, new_values, out) with the session's v (the same memory and N):
     *         out[n] = F_beta[n](v[n] with unit sites[n] set to new_values[n]) - F_beta[n](v[n]), from
     *         the cache. A model may refuse (FAILURE) another v while the session is open.
     *      b. the caller writes new_values[n] into v[n, sites[n]] for the rows it accepts, and nothing
     *         else into v;
     *      c. local_commit(v, sites, previous_values, accepted) with the sites of the latest energy_delta:
     *         accepted {N} (uint8, 0 or 1) says which rows changed; previous_values[n] is the value
     *         v[n, sites[n]] had before (b). The model updates its cache for the accepted rows (O(what
     *         one site touches) per row) and may rely on v[n, sites[n]] now being the latest
     *         energy_delta's new_values[n] for them. A round in which no row is accepted may skip (c).
     *   3. local_end(): closes the session (the model may keep its buffers for the next one).
     * Lifetimes: the model keeps no pointer to v; the caller keeps v's memory and values as (b) says
     * from local_begin to local_end, and changes no parameter of the model meanwhile. Other calls of the
     * model (free_energy, conditionals, ...) may come during a session and do not disturb it; outside a
     * session energy_delta is the 2.0 call (beta = 1). */
    int32_t (*local_begin)(void* self, const ansatz_tensor* v, const double* beta, ansatz_status* st);
    int32_t (*local_commit)(void* self, const ansatz_tensor* v, const int64_t* sites,
                            const float* previous_values, const uint8_t* accepted, ansatz_status* st);
    int32_t (*local_end)(void* self, ansatz_status* st);
    /* 2.2, STATE_GRAD: out[n, i] = dF(v[n]) / dv[n, i], the gradient of the free energy with respect to
     * the state (for Langevin proposals, MALA), for models whose variables are REAL; a model of another
     * domain that fills the slot refuses the call (INVALID_INPUT). v and out {N, D} FLOAT32. */
    int32_t (*free_energy_grad_state)(void* self, const ansatz_tensor* v, ansatz_tensor* out,
                                      ansatz_status* st);
    /* 2.4, LOCAL_STEP (a model that has it has LOCAL_MOVES too): `rounds` rounds of an open session (2a
     * to 2c above, repeated) in one call, for single-site Metropolis with a symmetric proposal (a flip,
     * another colour drawn uniformly, a Gaussian step: the Hastings ratio is 1). sites, uniforms and
     * accepted are {N, rounds} (chain-major: round t of chain n at n * rounds + t); new_values is
     * {N, rounds}, or NULL for flips: the new value is then the other value of a two-valued domain
     * (0 <-> 1 for BINARY, -1 <-> +1 for SPIN) of the site as it is at that round. Round t of row n,
     * on the state rounds 0 .. t-1 left: with d the change energy_delta would return for it (FLOAT32, the
     * same bits), the model accepts when uniforms[n, t] < exp(min(0, -d)) (uniforms in [0, 1); a NaN d
     * is rejected), the exponential rounded as the SDK's ansatz::exp rounds it (ansatz/math.hpp), writes the
     * new value into v[n, sites[n, t]] when it accepts (v is the session's chains: the one input a model
     * writes, and only there), updates its cache as local_commit would, and sets accepted[n, t] to 1 or 0
     * (uint8). So the chain, the draws and the acceptances are those of energy_delta + the caller's
     * accept/reject with the same rule + local_commit, round after round, bit for bit: a caller may use
     * either path. Rows are independent: a model may run all the rounds of one row before the next
     * (its state stays in the core's cache, as in a hand-written loop over one lattice). */
    int32_t (*local_step)(void* self, const ansatz_tensor* v, int64_t rounds, const int64_t* sites,
                          const float* new_values, const float* uniforms, uint8_t* accepted,
                          ansatz_status* st);
} ansatz_energy_table;

/* p(block | the other block) factorises over the block's units. */
typedef struct ansatz_conditionals_table
{
    uint32_t struct_size;
    /* Units in a block (the visible count is the sample size); -1 on failure. */
    int64_t (*block_size)(void* self, int32_t block);
    /* mean[n] = E[block | given[n]]; when sample is not NULL, also draw sample[n] ~ p(block | given[n])
     * from rngs[n] (N streams; may be NULL when sample is). given {N, size of the other block}; mean and
     * sample {N, size of block}. */
    int32_t (*conditional)(void* self, int32_t block, const ansatz_tensor* given, ansatz_tensor* mean,
                           ansatz_tensor* sample, ansatz_rng* rngs, ansatz_status* st);
    /* 2.1, TEMPERED (every tempered model with conditionals has it): conditional under E_beta[n],phi
     * (see the energy table's tempered_free_energy):
     * as conditional, with beta {N} (one inverse temperature per row, so replicas at several
     * temperatures share one call) and field {D} or NULL (it acts on the visible block only). At
     * beta = 0 the visible conditional does not depend on the hidden units: it is the base
     * distribution, so it draws exact starting points for annealing. */
    int32_t (*tempered_conditional)(void* self, int32_t block, const ansatz_tensor* given, const double* beta,
                                    const ansatz_tensor* field, ansatz_tensor* mean, ansatz_tensor* sample,
                                    ansatz_rng* rngs, ansatz_status* st);
    /* 2.1, BLOCK_FREE_ENERGY: out[n] = -log sum_{other} exp(-E(states[n], other)), the free energy of
     * one block with the other summed (or integrated) out: with block VISIBLE it is F(v); with block
     * HIDDEN, F(h), whose enumeration over a small hidden layer gives log Z exactly.
     * states {N, block_size(block)}, out {N} FLOAT64. */
    int32_t (*block_free_energy)(void* self, int32_t block, const ansatz_tensor* states, ansatz_tensor* out,
                                 ansatz_status* st);
    void* reserved[6];
} ansatz_conditionals_table;

/* A latent-variable model (a variational autoencoder): a prior p(h), a decoder p(x|h) and an
 * encoder Q(h|x) = N(mu(x), diag(exp(log_var(x)))), each with its backward pass, for the ELBO
 *     ELBO(x) = E_Q[log p(x|h)] - KL(Q(h|x) || p(h)) <= log p(x),   log p(x) = log E_p(h)[p(x|h)].
 *
 * The prior is N(0, I) over the L latent units, for every latent model of 2.x: the host and the
 * components that use this table compute log p(h), the closed-form KL, ancestral samples (the sample
 * stage decodes h ~ N(0, I)) and the manifold's grid of prior quantiles from that, and a model never
 * draws from or evaluates its prior itself. (A later minor may add a slot for another prior; its
 * absence will mean N(0, I).)
 *
 * Rows pair up: row n of h goes with row n of x, and every call works on each row alone (a row's
 * result does not depend on the rows beside it, up to rounding). x {N, D} are samples of the model's data
 * (the sample size given to setup), h, mu, log_var and d_h are {N, L}, per-row outputs {N}, all FLOAT32.
 * grads are views of every parameter's gradient in parameters() order (n_grads of them); a backward pass adds
 * (+=) to the gradients of the parameters its half uses (the encoder's or the decoder's) and leaves
 * the others alone.
 *
 * Call order and lifetimes. latent_size may be called from create on (the configuration fixes L); the
 * rest after setup. No call depends on an earlier one: a backward pass is defined by its own inputs
 * and the parameters as they are, and recomputes its forward pass. A model may keep what a forward
 * pass computed (the activations of the last encode, say) to serve a later backward pass on the same
 * rows, but only when it has checked that the inputs and the parameters are the ones that pass saw
 * (an optimizer changes the parameters in place between two batches), so that a result never depends
 * on what was kept. The ELBO loss calls, per batch (see plugins/losses/elbo):
 *     encode(x) -> mu, log_var;  h = mu + exp(log_var / 2) * eps, eps ~ N(0, I) (one stream per row)
 *     decode_backward_weighted(h, x, ...) (once per sample, or once for the K samples stacked)
 *     encode_backward(x, d_mu, d_log_var, ...)
 * so a model that keeps its last encode's activations for the encode_backward of the same x saves a
 * forward pass of the encoder. Evaluators call encode and decode_log_likelihood; pictures call
 * encode and decode_mean. */
typedef struct ansatz_latent_table
{
    uint32_t struct_size;
    int64_t (*latent_size)(void* self); /* L; -1 on failure */
    /* mu[n], log_var[n] of Q(h | x[n]); x {N, D}, mu and log_var {N, L}. */
    int32_t (*encode)(void* self, const ansatz_tensor* x, ansatz_tensor* mu, ansatz_tensor* log_var,
                      ansatz_status* st);
    /* grads += scale * sum_n (d_mu[n] . dmu(x[n])/dtheta + d_log_var[n] . dlog_var(x[n])/dtheta):
     * the encoder's half, given what the caller's objective says of mu and log_var (per-row weights
     * go into d_mu and d_log_var). */
    int32_t (*encode_backward)(void* self, const ansatz_tensor* x, const ansatz_tensor* d_mu,
                               const ansatz_tensor* d_log_var, float scale, ansatz_tensor* grads,
                               int32_t n_grads, ansatz_status* st);
    /* out[n] = log p(x[n] | h[n]), normalised over x (a density for real x, a probability for binary
     * x; for grey levels in [0, 1] under a Bernoulli decoder, the cross-entropy's negative, as the
     * course's PyTorch code computes it); h {N, L}, x {N, D}, out {N}. */
    int32_t (*decode_log_likelihood)(void* self, const ansatz_tensor* h, const ansatz_tensor* x,
                                     ansatz_tensor* out, ansatz_status* st);
    /* grads += scale * sum_n dlog p(x[n] | h[n])/dtheta; when d_h is not NULL, also
     * d_h[n] = scale * dlog p(x[n] | h[n])/dh[n] (written, not added). */
    int32_t (*decode_backward)(void* self, const ansatz_tensor* h, const ansatz_tensor* x, float scale,
                               ansatz_tensor* d_h, ansatz_tensor* grads, int32_t n_grads, ansatz_status* st);
    /* x_mean[n] = E[x | h[n]] {N, D}, for pictures of samples and reconstructions. */
    int32_t (*decode_mean)(void* self, const ansatz_tensor* h, ansatz_tensor* x_mean, ansatz_status* st);
    /* 2.2 (may be NULL: absent in a 2.0 or 2.1 plugin; the SDK's ModelRef then makes it of
     * decode_log_likelihood and decode_backward calls, one per distinct weight). decode_backward with
     * one weight per row, and the values from the same pass:
     *     grads += sum_n weights[n] * dlog p(x[n] | h[n])/dtheta;
     *     when d_h is not NULL: d_h[n] = weights[n] * dlog p(x[n] | h[n])/dh[n] (written);
     *     when out is not NULL: out[n] = log p(x[n] | h[n]).
     * weights {N} (any sign, 0 allowed). The importance-weighted bound's gradient weighs each sample by
     * its normalised importance weight (Burda et al. 2016), and the ELBO's value comes from the pass
     * that differentiates it. */
    int32_t (*decode_backward_weighted)(void* self, const ansatz_tensor* h, const ansatz_tensor* x,
                                        const float* weights, ansatz_tensor* d_h, ansatz_tensor* grads,
                                        int32_t n_grads, ansatz_tensor* out, ansatz_status* st);
    void* reserved[7];
} ansatz_latent_table;

typedef struct ansatz_model_table
{
    uint32_t struct_size;
    /* Its samples' shape (when its configuration fixes it) and domain; may be called any time after
     * create. NULL: the shape comes from the data and the domain is binary. */
    int32_t (*sample_info)(void* self, ansatz_sample_info* out, ansatz_status* st);
    /* Allocates and initialises the parameters for samples of this shape (one sample, without the
     * batch axis); a model whose sample_info fixes a shape gets that shape. A resumed model is set up,
     * then its parameters are overwritten through the views of parameters(). */
    int32_t (*setup)(void* self, const int64_t* sample_shape, int32_t rank, ansatz_rng* rng,
                     ansatz_status* st);
    /* Views of the model's own parameters (FLOAT32), valid until the next setup or destroy; returns
     * the count, -1 on failure. With out == NULL it only counts. */
    int32_t (*parameters)(void* self, ansatz_named_tensor* out, int32_t capacity, ansatz_status* st);
    /* Draws states from a simple distribution over the domain (chains' starting points): out[n] from
     * rngs[n], out {N, D}, N streams. */
    int32_t (*random_state)(void* self, ansatz_tensor* out, ansatz_rng* rngs, ansatz_status* st);
    const ansatz_energy_table* energy;             /* NULL: no energy functions */
    const ansatz_conditionals_table* conditionals; /* NULL: no conditionals */
    const ansatz_latent_table* latent;             /* NULL: not a latent-variable model */
    /* 2.3 (may be NULL: absent in a 2.0 to 2.2 plugin). The host has just written the parameters
     * through the views of parameters() (an optimizer's step, a restored checkpoint, a load stage):
     * whatever the model derived from them (a copy, a product, the means of its last pass) is stale.
     * Between two such calls the parameters do not change, so a model may keep such things without
     * checking them (see "Who writes a model's parameters" above). */
    int32_t (*parameters_changed)(void* self, ansatz_status* st);
    void* reserved[7];
} ansatz_model_table;

/* A model as another component sees it: its table and its instance. */
typedef struct ansatz_model_handle
{
    const ansatz_model_table* table;
    void* self;
} ansatz_model_handle;

/* ---------------------------------------------------------------- state ----------------------- */

/* Samplers, losses and optimizers that change as they run (PCD chains and their streams, Adam's step
 * count, a momentum buffer and its first-step flag) expose it, so a checkpoint holds everything a
 * bit-exact resume needs. Both slots may be NULL together (a stateless component).
 *   state:     views of every piece of state (any dtype), valid until the next call other than state;
 *              returns the count (-1 on failure); with out == NULL it only counts. Before the first
 *              call that creates state it may return fewer pieces (0 for "nothing yet").
 *   set_state: copies `n` pieces into the component, after bind; they are what state() gave when the
 *              checkpoint was written (same names, dtypes and shapes). A piece it does not know, or of
 *              another dtype or shape, is INVALID_INPUT with a sentence naming it. */
typedef int32_t (*ansatz_state_fn)(void* self, ansatz_named_tensor* out, int32_t capacity, ansatz_status* st);
typedef int32_t (*ansatz_set_state_fn)(void* self, const ansatz_named_tensor* in, int32_t n,
                                       ansatz_status* st);

/* ---------------------------------------------------------------- samplers -------------------- */

typedef struct ansatz_sampler_table
{
    uint32_t struct_size;
    /* The model the sampler draws from, for the stage that binds it. */
    int32_t (*bind)(void* self, const ansatz_model_handle* model, ansatz_status* st);
    /* Advances every chain (a row of `chains`, {N, D}) in place by `steps` sweeps (0 = the sampler's
     * configured number), chain n drawing from rngs[n] (N streams). */
    int32_t (*advance)(void* self, ansatz_tensor* chains, int32_t steps, ansatz_rng* rngs, ansatz_status* st);
    /* Diagnostics since the last call (acceptance rate, ...); may be NULL. */
    int32_t (*metrics)(void* self, const ansatz_metrics* out, ansatz_status* st);
    ansatz_state_fn state;
    ansatz_set_state_fn set_state;
    /* 2.2: as advance, but chain n is advanced by a transition that leaves exp(-F_beta[n](v)) / Z_beta[n]
     * invariant, F_beta the tempered family of the energy table's tempered_free_energy with field 0
     * (E_beta = E0 + beta E1), for parallel tempering; beta {N}, one inverse temperature per row (any
     * finite value the model accepts; 1 is the model itself). NULL: the sampler cannot temper. A sampler
     * that cannot temper the bound model (it lacks the functions the sampler tempers through) refuses
     * with INVALID_INPUT and a sentence naming them; a call with N = 0 rows does nothing else, so a
     * wrapper can ask at bind whether tempering will work. */
    int32_t (*advance_tempered)(void* self, ansatz_tensor* chains, int32_t steps, const double* beta,
                                ansatz_rng* rngs, ansatz_status* st);
    void* reserved[7];
} ansatz_sampler_table;

typedef struct ansatz_sampler_handle
{
    const ansatz_sampler_table* table;
    void* self;
} ansatz_sampler_handle;

/* ---------------------------------------------------------------- losses ---------------------- */

typedef struct ansatz_loss_table
{
    uint32_t struct_size;
    /* sampler is NULL unless the component has ANSATZ_LOSS_NEEDS_SAMPLER. */
    int32_t (*bind)(void* self, const ansatz_model_handle* model, const ansatz_sampler_handle* sampler,
                    ansatz_status* st);
    /* Reports the loss (to be minimised) on this batch as the metric "loss", and other scalars; adds
     * its gradient to grads in parameters() order. grads == NULL (n_grads 0) asks for the value only
     * (an evaluation): then no state that training depends on may change. batch {N, D}. */
    int32_t (*compute)(void* self, const ansatz_tensor* batch, ansatz_tensor* grads, int32_t n_grads,
                       ansatz_rng* rng, const ansatz_metrics* out, ansatz_status* st);
    ansatz_state_fn state;
    ansatz_set_state_fn set_state;
    void* reserved[8];
} ansatz_loss_table;

/* ---------------------------------------------------------------- optimizers ------------------ */

typedef struct ansatz_optimizer_table
{
    uint32_t struct_size;
    /* The parameters it will update; it allocates its state for them. */
    int32_t (*bind)(void* self, const ansatz_named_tensor* params, int32_t n_params, ansatz_status* st);
    /* params[k] -= update(grads[k]); called once per batch. */
    int32_t (*step)(void* self, ansatz_named_tensor* params, const ansatz_tensor* grads, int32_t n_params,
                    ansatz_status* st);
    ansatz_state_fn state;
    ansatz_set_state_fn set_state;
    void* reserved[8];
} ansatz_optimizer_table;

/* ---------------------------------------------------------------- datasets -------------------- */

typedef struct ansatz_dataset_info
{
    uint32_t struct_size;
    int32_t sample_rank; /* shape of one sample, without the batch axis */
    int64_t sample_shape[ANSATZ_MAX_RANK];
    int64_t count;
    int32_t has_labels;
    int32_t is_image; /* sample_shape is {H, W} or {H, W, C}: grey levels in [0, 1], or in the box of a
                         model that states one (2.5; e.g. idx's `range: [-1, 1]` for a neural energy) */
    int32_t domain;   /* ansatz_domain of the values */
    int32_t reserved_;
    /* 2.2 (NULL: none): the names of the label values 0, 1, 2, ... separated by '|' ("T-shirt/top|
     * Trouser|..."), for legends; valid as long as the dataset lives. A label value without a name is
     * shown as its number. */
    const char* label_names;
    void* reserved[3];
} ansatz_dataset_info;

typedef struct ansatz_dataset_table
{
    uint32_t struct_size;
    int32_t (*info)(void* self, ansatz_dataset_info* out, ansatz_status* st);
    /* out[i] = sample indices[i], flattened: out {n, prod(sample_shape)} FLOAT32; labels (n floats)
     * may be NULL. Reads are value-only: the same indices give the same rows. */
    int32_t (*read)(void* self, const int64_t* indices, int64_t n, ansatz_tensor* out, float* labels,
                    ansatz_rng* rng, ansatz_status* st);
    void* reserved[8];
} ansatz_dataset_table;

/* ---------------------------------------------------------------- evaluators (2.1) ------------ */

/* Measures a model on a dataset and reports named scalars: a log-likelihood, a log partition
 * function, an error. A standard error of metric `x` is reported as the metric `x_stderr`. An
 * evaluator that needs a sampler or more data names them in COMPONENT keys (it binds such a sampler
 * to the model itself). An evaluator keeps no state between evaluations: the host passes a fresh
 * stream to each, so a resumed run evaluates as an uninterrupted one. */
typedef struct ansatz_evaluator_table
{
    uint32_t struct_size;
    /* The model it measures, at the start of every stage that uses it (as a sampler's bind). A
     * configuration that cannot serve this model (a layer too large to enumerate) is INVALID_INPUT. */
    int32_t (*bind)(void* self, const ansatz_model_handle* model, ansatz_status* st);
    /* Measures the bound model on data {N, D} (FLOAT32, every row of the evaluated dataset), drawing
     * only from rng, and reports through out. Value-only: changes neither the model's parameters nor
     * anything training depends on. May run long: asks host->cancelled() between units of work. */
    int32_t (*evaluate)(void* self, const ansatz_tensor* data, ansatz_rng* rng, const ansatz_metrics* out,
                        ansatz_status* st);
    void* reserved[8];
} ansatz_evaluator_table;

/* ---------------------------------------------------------------- descriptor ------------------ */

/* ansatz_component.flags */
typedef enum ansatz_component_flag
{
    ANSATZ_LOSS_NEEDS_SAMPLER = 1u << 0, /* a loss that estimates a negative phase with MCMC */
} ansatz_component_flag;

/* An optional function found by name: NULL when the component has none of that name. */
typedef void (*ansatz_function)(void);

typedef struct ansatz_component
{
    uint32_t struct_size;
    int32_t kind; /* ansatz_kind */
    const char* name;
    const char* summary; /* one line */
    const ansatz_param_spec* params;
    int32_t n_params;
    uint32_t flags; /* ansatz_component_flag */
    uint64_t needs; /* sampler, loss, evaluator: the ansatz_model_function bits it calls on its model */
    /* Returns NULL and fills st on failure. */
    void* (*create)(const ansatz_config* config, const ansatz_host* host, ansatz_status* st);
    void (*destroy)(void* self);
    /* ansatz_model_table, ansatz_sampler_table, ... as `kind` says. */
    const void* table;
    /* Optional functions by name (may be NULL): e.g. "ansatz.tempered_free_energy". */
    ansatz_function (*extension)(const char* name);
    void* reserved[8];
} ansatz_component;

typedef struct ansatz_plugin_desc
{
    uint32_t abi_major; /* first in every major: see ANSATZ_PLUGIN_ENTRY_SYMBOL */
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
