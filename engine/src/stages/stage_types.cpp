#include "stages/stage_types.hpp"

#include "stages/stages.hpp"

namespace ansatz::engine
{

KeySpec component_key(const std::string& name, int32_t kind, bool required, const std::string& doc)
{
    KeySpec k;
    k.name = name;
    k.type = ANSATZ_PARAM_COMPONENT;
    k.component_kind = kind;
    k.flags = required ? ANSATZ_PARAM_REQUIRED : ANSATZ_PARAM_OPTIONAL;
    k.doc = doc;
    return k;
}

KeySpec component_list_key(const std::string& name, int32_t kind, bool required, const std::string& doc)
{
    KeySpec k;
    k.name = name;
    k.type = ANSATZ_PARAM_STRING_LIST;
    k.component_kind = kind;
    k.flags = required ? ANSATZ_PARAM_REQUIRED : ANSATZ_PARAM_OPTIONAL;
    k.min_length = 1;
    k.doc = doc;
    return k;
}

KeySpec int_key(const std::string& name, int64_t default_value, int64_t min, const std::string& doc,
                std::optional<int64_t> max)
{
    KeySpec k;
    k.name = name;
    k.type = ANSATZ_PARAM_INT;
    k.flags = ANSATZ_PARAM_HAS_MIN;
    k.min = static_cast<double>(min);
    if (max)
    {
        k.flags |= ANSATZ_PARAM_HAS_MAX;
        k.max = static_cast<double>(*max);
    }
    k.default_value = std::to_string(default_value);
    k.doc = doc;
    return k;
}

KeySpec optional_int_key(const std::string& name, int64_t min, const std::string& doc,
                         std::optional<int64_t> max)
{
    KeySpec k = int_key(name, min, min, doc, max);
    k.flags |= ANSATZ_PARAM_OPTIONAL;
    k.default_value.clear();
    return k;
}

KeySpec path_key(const std::string& name, const std::string& doc)
{
    KeySpec k;
    k.name = name;
    k.type = ANSATZ_PARAM_PATH;
    k.flags = ANSATZ_PARAM_REQUIRED | ANSATZ_PARAM_MUST_EXIST;
    k.doc = doc;
    return k;
}

KeySpec reals_key(const std::string& name, double min, bool min_exclusive, const std::string& doc)
{
    KeySpec k;
    k.name = name;
    k.type = ANSATZ_PARAM_FLOAT_LIST;
    k.flags = ANSATZ_PARAM_OPTIONAL | ANSATZ_PARAM_HAS_MIN | ANSATZ_PARAM_DOUBLE |
              (min_exclusive ? uint32_t{ ANSATZ_PARAM_MIN_EXCLUSIVE } : 0u);
    k.min = min;
    k.min_length = 1;
    k.doc = doc;
    return k;
}

KeySpec string_key(const std::string& name, const std::string& doc)
{
    KeySpec k;
    k.name = name;
    k.type = ANSATZ_PARAM_STRING;
    k.flags = ANSATZ_PARAM_REQUIRED;
    k.doc = doc;
    return k;
}

KeySpec bool_key(const std::string& name, bool default_value, const std::string& doc)
{
    KeySpec k;
    k.name = name;
    k.type = ANSATZ_PARAM_BOOL;
    k.default_value = default_value ? "true" : "false";
    k.doc = doc;
    return k;
}

KeySpec choice_key(const std::string& name, const std::string& choices, const std::string& default_value,
                   const std::string& doc)
{
    KeySpec k;
    k.name = name;
    k.type = ANSATZ_PARAM_CHOICE;
    k.choices = choices;
    k.default_value = default_value;
    k.doc = doc;
    return k;
}

KeySpec optional_text_key(const std::string& name, const std::string& doc)
{
    KeySpec k;
    k.name = name;
    k.type = ANSATZ_PARAM_STRING;
    k.flags = ANSATZ_PARAM_OPTIONAL;
    k.doc = doc;
    return k;
}

KeySpec optional_real_key(const std::string& name, const std::string& doc)
{
    KeySpec k;
    k.name = name;
    k.type = ANSATZ_PARAM_FLOAT;
    k.flags = ANSATZ_PARAM_OPTIONAL | ANSATZ_PARAM_DOUBLE;
    k.doc = doc;
    return k;
}

namespace
{

// Maxima that keep every count and every product of them inside int64 (and a chain count inside
// what memory can hold); `steps` needs none, since the sample stage advances in bounded slices.
constexpr int64_t max_epochs = 1'000'000'000;
constexpr int64_t max_batch_size = 1'000'000;
constexpr int64_t max_chains = 1'000'000;
// burn_in + samples * thin sweeps must fit int64.
constexpr int64_t max_thin = 1'000'000'000;
constexpr int64_t max_samples = 1'000'000'000;

KeySpec latent_model_key()
{
    KeySpec k = component_key("model", ANSATZ_KIND_MODEL, true,
                              "the latent-variable model (a VAE: encode, decode_mean, ...)");
    k.component_needs = ANSATZ_FN_LATENT;
    return k;
}

KeySpec optional_bool_key(const std::string& name, const std::string& doc)
{
    KeySpec k = bool_key(name, false, doc);
    k.flags |= ANSATZ_PARAM_OPTIONAL;
    k.default_value.clear();
    return k;
}

KeySpec optional_names_key(const std::string& name, const std::string& doc)
{
    KeySpec k;
    k.name = name;
    k.type = ANSATZ_PARAM_STRING_LIST;
    k.flags = ANSATZ_PARAM_OPTIONAL;
    k.min_length = 1;
    k.doc = doc;
    return k;
}

} // namespace

const std::vector<StageType>& stage_types()
{
    static const std::vector<StageType> types = {
        { "train",
          "fits a model to a dataset: batches of the data, a loss's gradient, an optimizer's step",
          { component_key("model", ANSATZ_KIND_MODEL, true, "the model to train"),
            component_key("data", ANSATZ_KIND_DATASET, true, "the training data"),
            component_key("loss", ANSATZ_KIND_LOSS, true, "the loss whose gradient is followed"),
            component_key("sampler", ANSATZ_KIND_SAMPLER, false,
                          "the sampler of a loss that needs one (CD, PCD)"),
            component_key("optimizer", ANSATZ_KIND_OPTIMIZER, true, "the update rule"),
            int_key("epochs", 1, 1, "passes over the data", max_epochs),
            int_key("batch_size", 64, 1, "samples per gradient step", max_batch_size),
            bool_key("shuffle", true, "visit the data in a new random order every epoch"),
            int_key(
                "checkpoint_every", 1, 0,
                "save a checkpoint every N epochs and after the last one (0: never); the last one is kept",
                max_epochs),
            component_list_key("evaluators", ANSATZ_KIND_EVALUATOR, false,
                               "evaluators run on evaluate_data during training; their metrics join the "
                               "epoch's row"),
            component_key("evaluate_data", ANSATZ_KIND_DATASET, false,
                          "the dataset the evaluators measure the model on (e.g. held-out data)"),
            optional_int_key("evaluate_every", 1,
                             "run the evaluators every N epochs and after the last one "
                             "(absent: every epoch)",
                             max_epochs) },
          check_train_stage,
          run_train_stage },
        { "sample",
          "draws samples from a model with a sampler; writes them as .npy and, for images, a PNG grid",
          { component_key("model", ANSATZ_KIND_MODEL, true, "the model to draw from"),
            component_key("sampler", ANSATZ_KIND_SAMPLER, false,
                          "the Markov chain; none for a latent-variable model, whose samples are decode_mean "
                          "of h ~ N(0, I) (the prior)"),
            component_key("data", ANSATZ_KIND_DATASET, false,
                          "a dataset giving the sample shape and, with init: data, the starting points"),
            int_key("count", 64, 1, "number of chains (samples)", max_chains),
            int_key("steps", 1000, 0,
                    "sweeps of the sampler per chain (no meaning without a sampler); 0: one call of the "
                    "sampler's own number of steps, which a sampler with a replay buffer (langevin) starts "
                    "from its buffer, as in training"),
            choice_key("init", "random|data", "random",
                       "start the chains from the model's random states or from random rows of 'data'"),
            bool_key("image", true, "also write a PNG grid when the samples are images"),
            choice_key("picture", "means|states", "means",
                       "what the PNG grid shows: E[v | h] from each final state (a model with conditionals), "
                       "or the states themselves"),
            int_key("trace_every", 10, 0,
                    "record the chains' traces (free energy, mean of the state) every N sweeps after the "
                    "burn-in, for the diagnostics: tau, ESS, R-hat, binned error (0: none)"),
            optional_int_key("burn_in", 0,
                             "sweeps before the traces are recorded (absent: half the steps)") },
          check_sample_stage,
          run_sample_stage,
          sample_writes },
        { "generate",
          "draws a dataset from a model with a sampler at one or several temperatures: <to>.npy and "
          "<to>.beta.npy in the run folder, read back as $run/<to>.npy by the npy dataset",
          { component_key("model", ANSATZ_KIND_MODEL, true, "the model to draw from"),
            component_key(
                "sampler", ANSATZ_KIND_SAMPLER, true,
                "the Markov chain (at inverse temperatures other than 1: one with advance_tempered)"),
            component_key("data", ANSATZ_KIND_DATASET, false,
                          "a dataset giving the sample shape and, with init: data, the starting points"),
            int_key("chains", 64, 1, "chains per temperature", max_chains),
            int_key("burn_in", 1000, 0, "sweeps before the first kept state of every chain"),
            int_key("thin", 1, 1, "sweeps between two kept states of a chain", max_thin),
            int_key("samples", 100, 1, "states kept per chain: chains x samples rows per temperature",
                    max_samples),
            reals_key("temperatures", 0, true,
                      "temperatures T to sample at (beta = 1 / T), one after the other; absent: beta = 1"),
            reals_key("betas", 0, false, "inverse temperatures to sample at, instead of temperatures"),
            choice_key("init", "random|data", "random",
                       "start the chains from the model's random states or from random rows of 'data'"),
            string_key("to", "the dataset's name: the run folder gets <to>.npy (rows {N, D}, float32) and "
                             "<to>.beta.npy (the beta of each row, float64)") },
          check_generate_stage,
          run_generate_stage,
          generate_writes },
        { "evaluate",
          "measures a model on a dataset with evaluators (likelihoods, errors); one row of metrics.csv",
          { component_key("model", ANSATZ_KIND_MODEL, true, "the model to measure"),
            component_key("data", ANSATZ_KIND_DATASET, true, "the data to measure it on"),
            component_list_key("evaluators", ANSATZ_KIND_EVALUATOR, true, "the evaluators to run, in order"),
            optional_real_key("x", "this measurement's place on the x axis of the run's comparison (e.g. "
                                   "the temperature): evaluate stages with an x make comparison.csv and one "
                                   "plot per metric against x in report.html"),
            optional_text_key("series", "the line this measurement belongs to in the comparison (e.g. mc, "
                                        "rbm); needs x; absent: the model's name"),
            optional_text_key("x_label", "the name of the comparison's x axis (e.g. temperature); needs x; "
                                         "absent: x; every stage that gives one gives the same") },
          check_evaluate_stage,
          run_evaluate_stage },
        { "load",
          "sets a model's parameters from .npy files: a checkpoint folder, or numpy.save files of another "
          "tool",
          { component_key("model", ANSATZ_KIND_MODEL, true, "the model whose parameters are set"),
            path_key("from", "the folder of <model>.<parameter>.npy (a checkpoint) or <parameter>.npy files"),
            component_key("data", ANSATZ_KIND_DATASET, false,
                          "a dataset giving the sample shape, for a model that does not fix its own") },
          check_load_stage,
          run_load_stage },
        { "latent",
          "pictures of a latent-variable model on a dataset: reconstructions, the decoded manifold and the "
          "scatter of posterior means by label (2-D latent)",
          { latent_model_key(),
            component_key("data", ANSATZ_KIND_DATASET, true, "the rows to reconstruct and to encode"),
            int_key("reconstructions", 32, 0,
                    "originals of the first N rows above their reconstructions decode_mean(mu(x)) (PNG; 0: "
                    "none)",
                    max_chains),
            optional_int_key("manifold", 0,
                             "n x n decoded means over the prior's quantiles of a 2-D latent (PNG; 0: none; "
                             "absent: 20 for a 2-D latent)",
                             100),
            optional_bool_key("scatter",
                              "the posterior means of the rows coloured by label (SVG; absent: for a "
                              "2-D latent when the data has labels)"),
            int_key("scatter_points", 10000, 1, "at most this many rows (the first) in the scatter",
                    max_chains),
            optional_names_key("label_names", "names of the label values 0, 1, ... in the scatter's legend "
                                              "(absent: the dataset's, e.g. Fashion-MNIST's)") },
          check_latent_stage,
          run_latent_stage },
    };
    return types;
}

const StageType* find_stage_type(const std::string& name)
{
    for (const StageType& t : stage_types())
        if (t.name == name)
            return &t;
    return nullptr;
}

} // namespace ansatz::engine
