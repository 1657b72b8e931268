# qmc_add_image(): packs a QMC image at build time, for projects that
# find_package(qmc). Installed beside qmcConfig.cmake (docs/cmake-package.md).
#
#   qmc_add_image(<name> CHECKPOINT <checkpoint> [PRESET <preset>] [TOKENIZER <file>]
#                 [OUTPUT <file>] [OPTIONS <qmc pack flag>...])
#
# Adds the target <name> (built by default) whose output is the image
# (OUTPUT, default <name>.qmc in the current binary directory; its path is
# the target's QMC_IMAGE_FILE property). It repacks when a file pack read
# changes (the depfile `qmc pack --depfile` writes), when the flags change,
# and when qmc itself changes, and not otherwise. Relative CHECKPOINT,
# TOKENIZER and paths in OPTIONS are taken from the current source
# directory. A missing checkpoint or tokenizer stops the configure.

# The function keeps the policies of this file: CMP0116 NEW makes the Ninja
# generators read the depfile's paths as Make does.
cmake_policy(PUSH)
cmake_policy(VERSION 3.20...3.25)

# Errors start with a space: CMake prints such a message as it is, on one
# line, instead of wrapping it.
function(qmc_add_image name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "CHECKPOINT;PRESET;TOKENIZER;OUTPUT" "OPTIONS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR " qmc_add_image(${name}): unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_CHECKPOINT)
    message(FATAL_ERROR " qmc_add_image(${name}): CHECKPOINT is required")
  endif()
  if(NOT TARGET qmc::qmc)
    message(FATAL_ERROR " qmc_add_image(${name}): the imported target qmc::qmc is missing (find_package(qmc) first)")
  endif()

  cmake_path(ABSOLUTE_PATH arg_CHECKPOINT BASE_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" NORMALIZE
             OUTPUT_VARIABLE checkpoint)
  if(NOT EXISTS "${checkpoint}")
    message(FATAL_ERROR " qmc_add_image(${name}): checkpoint ${checkpoint} does not exist")
  endif()
  set(command pack "${checkpoint}")
  # What the first build needs before any depfile exists; the depfile adds
  # the rest (a directory's files, calibration text, ...).
  set(inputs "")
  if(NOT IS_DIRECTORY "${checkpoint}")
    list(APPEND inputs "${checkpoint}")
  endif()
  if(arg_TOKENIZER)
    cmake_path(ABSOLUTE_PATH arg_TOKENIZER BASE_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" NORMALIZE
               OUTPUT_VARIABLE tokenizer)
    if(NOT EXISTS "${tokenizer}")
      message(FATAL_ERROR " qmc_add_image(${name}): tokenizer ${tokenizer} does not exist")
    endif()
    list(APPEND command --tokenizer "${tokenizer}")
    list(APPEND inputs "${tokenizer}")
  endif()
  if(arg_PRESET)
    list(APPEND command --preset "${arg_PRESET}")
  endif()
  list(APPEND command ${arg_OPTIONS})

  if(NOT arg_OUTPUT)
    set(arg_OUTPUT "${name}.qmc")
  endif()
  cmake_path(ABSOLUTE_PATH arg_OUTPUT BASE_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}" NORMALIZE OUTPUT_VARIABLE output)
  set(depfile "${CMAKE_CURRENT_BINARY_DIR}/${name}.qmc.d")
  list(APPEND command -o "${output}" --depfile "${depfile}" --quiet)

  # A changed command line repacks: Ninja compares the line it ran, and the
  # Makefile generators delete an output whose rule changed when they regenerate.
  add_custom_command(
    OUTPUT "${output}"
    COMMAND qmc::qmc ${command}
    DEPENDS qmc::qmc ${inputs}
    DEPFILE "${depfile}"
    WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
    COMMENT "Packing QMC image ${name}"
    VERBATIM)
  add_custom_target(${name} ALL DEPENDS "${output}")
  set_target_properties(${name} PROPERTIES QMC_IMAGE_FILE "${output}")
endfunction()

cmake_policy(POP)
