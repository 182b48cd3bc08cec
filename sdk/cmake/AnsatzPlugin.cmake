# ansatz_add_plugin(NAME SOURCES src... [LIBRARIES lib...] [OUTPUT_DIRECTORY dir])
#
# Builds libansatz_<NAME>.so: a MODULE library with hidden visibility whose version script exports only
# the entry symbol, linked with -Wl,--no-undefined (a plugin links nothing from the executable).
# Without OUTPUT_DIRECTORY it goes where ANSATZ_PLUGIN_OUTPUT_DIRECTORY says, else the build folder.
function(ansatz_add_plugin name)
  cmake_parse_arguments(ARG "" "OUTPUT_DIRECTORY" "SOURCES;LIBRARIES" ${ARGN})
  # Beside this file, wherever the function is called from.
  set(_ANSATZ_PLUGIN_MAP "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/ansatz_plugin.map")
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "ansatz_add_plugin(${name}): no SOURCES")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE Ansatz::sdk ${ARG_LIBRARIES})
  set_target_properties(${name} PROPERTIES
    PREFIX "libansatz_"
    OUTPUT_NAME "${name}"
    CXX_STANDARD 20
    CXX_STANDARD_REQUIRED ON
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_link_options(${name} PRIVATE "-Wl,--no-undefined" "-Wl,--version-script=${_ANSATZ_PLUGIN_MAP}")
  set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS "${_ANSATZ_PLUGIN_MAP}")
  # The build fingerprint the descriptor shows (ansatz plugins --verbose): flags that change layouts.
  if(NOT xtensor_VERSION)
    find_package(xtensor QUIET) # in this function's scope: only for the fingerprint below
  endif()
  string(TOUPPER "${CMAKE_BUILD_TYPE}" _type)
  set(_flags "${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${_type}}")
  string(STRIP "${_flags}" _flags)
  target_compile_definitions(${name} PRIVATE
    "ANSATZ_BUILD_FLAGS=\"${CMAKE_BUILD_TYPE} ${_flags}, xtensor ${xtensor_VERSION}\"")
  # In the superbuild, the tests depend on every in-tree plugin.
  if(DEFINED CACHE{ANSATZ_IN_TREE_PLUGINS})
    set(ANSATZ_IN_TREE_PLUGINS "${ANSATZ_IN_TREE_PLUGINS};${name}" CACHE INTERNAL "")
  endif()
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIRECTORY}")
  elseif(ANSATZ_PLUGIN_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ANSATZ_PLUGIN_OUTPUT_DIRECTORY}")
  endif()
endfunction()
