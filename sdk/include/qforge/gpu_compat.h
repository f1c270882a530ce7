/*
 * One GPU source, two vendors. Kernels are written in the CUDA dialect and
 * include this header; when hipcc compiles them (QF_BUILD_HIP), the cuda*
 * runtime names used by qforge's kernels are mapped to their hip* twins.
 * Only the names the project uses are mapped: add one here when a kernel
 * needs it.
 */
#ifndef QFORGE_GPU_COMPAT_H
#define QFORGE_GPU_COMPAT_H

#if defined(QF_BUILD_HIP)
#include <hip/hip_runtime.h>
#include <hip/hip_fp16.h>
#define cudaError_t hipError_t
#define cudaSuccess hipSuccess
#define cudaGetErrorString hipGetErrorString
#define cudaGetLastError hipGetLastError
#define cudaGetDeviceCount hipGetDeviceCount
#define cudaSetDevice hipSetDevice
#define cudaMalloc hipMalloc
#define cudaFree hipFree
#define cudaMemcpy hipMemcpy
#define cudaMemset hipMemset
#define cudaMemcpyHostToDevice hipMemcpyHostToDevice
#define cudaMemcpyDeviceToHost hipMemcpyDeviceToHost
#define cudaMemcpyDeviceToDevice hipMemcpyDeviceToDevice
#define cudaDeviceSynchronize hipDeviceSynchronize
#define cudaStream_t hipStream_t
#define QF_GPU_DEVICE_TYPE kDLROCM
#define QF_GPU_VENDOR "hip"
#else
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#define QF_GPU_DEVICE_TYPE kDLCUDA
#define QF_GPU_VENDOR "cuda"
#endif

#endif /* QFORGE_GPU_COMPAT_H */
