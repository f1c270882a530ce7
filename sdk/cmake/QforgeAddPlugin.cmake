# qforge_add_plugin(NAME <scheme>
#                   SOURCES <c files…>            # built into every backend
#                   [GPU_SOURCES <.cu files…>]    # CUDA dialect, also built for HIP
#                   [QUANT_METHODS <m…>]          # quantization_config.quant_method values
#                   [LIBRARIES <targets…>]        # extra link libraries
#                   [INCLUDE_DIRS <dirs…>]
#                   [NO_GPU])                     # only the cpu build
#
# Makes one MODULE per backend: <scheme>-cpu.so always, <scheme>-cuda.so when
# CUDA is enabled, <scheme>-hip.so when HIP is enabled. Each variant is
# compiled with QF_BUILD_CPU, QF_BUILD_CUDA or QF_BUILD_HIP defined. GPU
# sources are written once in the CUDA dialect and include
# "qforge/gpu_compat.h", which maps the cuda* runtime names to hip* for the HIP
# build; HIP objects are compiled by hipcc through a custom command because
# CMake's HIP language does not find Debian's ROCm layout.
#
# Shared by the in-tree build and by out-of-tree plugins (installed with the
# CMake package: find_package(qforge) brings it in).
include_guard(GLOBAL)

if(NOT DEFINED QFORGE_PLUGIN_INSTALL_DIR)
  set(QFORGE_PLUGIN_INSTALL_DIR lib/qforge)
endif()

function(qforge_add_plugin)
  cmake_parse_arguments(P "NO_GPU" "NAME"
                        "SOURCES;GPU_SOURCES;QUANT_METHODS;LIBRARIES;INCLUDE_DIRS" ${ARGN})
  if(NOT P_NAME)
    message(FATAL_ERROR "qforge_add_plugin: NAME is required")
  endif()
  if(NOT P_SOURCES)
    message(FATAL_ERROR "qforge_add_plugin(${P_NAME}): SOURCES is required")
  endif()
  if(NOT P_QUANT_METHODS)
    set(P_QUANT_METHODS ${P_NAME})
  endif()
  if(DEFINED QF_PLUGIN_OUTPUT_DIR)
    set(_outdir ${QF_PLUGIN_OUTPUT_DIR})
  else()
    set(_outdir ${CMAKE_BINARY_DIR}/${QFORGE_PLUGIN_INSTALL_DIR})
  endif()

  set(_backends cpu)
  if(NOT P_NO_GPU AND P_GPU_SOURCES)
    if(QF_CUDA AND CMAKE_CUDA_COMPILER)
      list(APPEND _backends cuda)
    endif()
    if(QF_HIP AND QF_HIPCC)
      list(APPEND _backends hip)
    endif()
  endif()

  foreach(_be ${_backends})
    set(_tgt ${P_NAME}-${_be})
    set(_srcs ${P_SOURCES})
    if(_be STREQUAL "cuda")
      list(APPEND _srcs ${P_GPU_SOURCES})
    elseif(_be STREQUAL "hip")
      set(_hip_objs)
      foreach(_gs ${P_GPU_SOURCES})
        get_filename_component(_abs ${_gs} ABSOLUTE)
        get_filename_component(_base ${_gs} NAME_WE)
        set(_obj ${CMAKE_CURRENT_BINARY_DIR}/${_tgt}.dir/${_base}.hip.o)
        set(_archflags)
        foreach(_arch ${QF_HIP_ARCHITECTURES})
          list(APPEND _archflags --offload-arch=${_arch})
        endforeach()
        add_custom_command(
          OUTPUT ${_obj}
          COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/${_tgt}.dir
          COMMAND ${QF_HIPCC} -x hip -fPIC -O3 -std=c++17 -DQF_BUILD_HIP=1
                  ${_archflags}
                  "-I$<JOIN:$<TARGET_PROPERTY:qforge::sdk,INTERFACE_INCLUDE_DIRECTORIES>,;-I>"
                  "$<$<BOOL:${P_INCLUDE_DIRS}>:-I$<JOIN:${P_INCLUDE_DIRS},;-I>>"
                  -c ${_abs} -o ${_obj}
          DEPENDS ${_abs}
          IMPLICIT_DEPENDS CXX ${_abs}
          COMMAND_EXPAND_LISTS
          COMMENT "hipcc ${_gs} (${QF_HIP_ARCHITECTURES})"
          VERBATIM)
        list(APPEND _hip_objs ${_obj})
      endforeach()
      list(APPEND _srcs ${_hip_objs})
    endif()

    add_library(${_tgt} MODULE ${_srcs})
    set_target_properties(${_tgt} PROPERTIES
      PREFIX ""
      OUTPUT_NAME ${_tgt}
      LIBRARY_OUTPUT_DIRECTORY ${_outdir}
      C_VISIBILITY_PRESET hidden
      CUDA_VISIBILITY_PRESET hidden)
    string(TOUPPER ${_be} _BE)
    target_compile_definitions(${_tgt} PRIVATE _GNU_SOURCE QF_BUILD_${_BE}=1 QF_PLUGIN_NAME="${P_NAME}")
    target_link_libraries(${_tgt} PRIVATE qforge::sdk ${P_LIBRARIES})
    if(P_INCLUDE_DIRS)
      target_include_directories(${_tgt} PRIVATE ${P_INCLUDE_DIRS})
    endif()
    if(_be STREQUAL "cuda")
      target_link_libraries(${_tgt} PRIVATE CUDA::cudart)
      set_target_properties(${_tgt} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
    elseif(_be STREQUAL "hip")
      target_link_libraries(${_tgt} PRIVATE ${QF_AMDHIP64} stdc++)
      set_target_properties(${_tgt} PROPERTIES LINKER_LANGUAGE C)
    endif()
    install(TARGETS ${_tgt} LIBRARY DESTINATION ${QFORGE_PLUGIN_INSTALL_DIR})
    set_property(GLOBAL APPEND PROPERTY QF_PLUGIN_BUILDS "${P_NAME}|${_be}|${_tgt}.so")
  endforeach()
  set_property(GLOBAL APPEND PROPERTY QF_PLUGIN_NAMES ${P_NAME})
  string(REPLACE ";" "," _qm "${P_QUANT_METHODS}")
  set_property(GLOBAL PROPERTY QF_PLUGIN_METHODS_${P_NAME} "${_qm}")
endfunction()
