// ansatz -- reads a YAML pipeline and runs it with the plugins it finds. See `ansatz --help`.
//
// Exit status: 0 done, 1 failed while running, 2 bad input (pipeline, data, plugin), 130 interrupted.
// Every failure is one message on stderr; nothing escapes as an uncaught exception.
#include "ansatz/error.hpp"
#include "commands.hpp"
#include "user_error.hpp"

#include <cstdio>
#include <exception>

int main(int argc, char** argv)
{
    using namespace ansatz::engine;
    try
    {
        const Options options = parse_options(argc, argv);
        if (options.command.empty() || options.command == "help")
        {
            print_usage();
            return options.command.empty() ? 2 : 0;
        }
        if (options.command == "version")
        {
            std::printf("ansatz 0.1.0 (plugin ABI %d.%d)\n", ANSATZ_ABI_MAJOR, ANSATZ_ABI_MINOR);
            return 0;
        }
        if (options.command == "run")
            return command_run(options);
        if (options.command == "validate")
            return command_validate(options);
        if (options.command == "plugins")
            return command_plugins(options);
        if (options.command == "describe")
            return command_describe(options);
        if (options.command == "report")
            return command_report(options);
        throw UserError("unknown command '" + options.command +
                        "'; commands: run, validate, plugins, describe, report.");
    }
    catch (const UserError& e)
    {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
    catch (const ansatz::Error& e)
    {
        std::fprintf(stderr, "error: %s\n", e.what());
        if (e.code() == ANSATZ_STATUS_INVALID_INPUT)
            return 2;
        return e.code() == ANSATZ_STATUS_CANCELLED ? 130 : 1;
    }
    catch (const std::exception& e)
    {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    catch (...) // something that is not a std::exception: still one line, never std::terminate
    {
        std::fprintf(stderr, "error: unknown failure\n");
        return 1;
    }
}
