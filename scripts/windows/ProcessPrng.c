/* A bcryptprimitives.dll for Wine 8 (Debian 12), which has none: Rust's standard library for
 * Windows takes its random numbers from ProcessPrng there. This one function hands the request
 * to advapi32's RtlGenRandom (SystemFunction036), which Wine has. Built by
 * scripts/windows-test.sh --setup into the Wine prefix; never shipped. */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE out, SIZE_T len)
{
    return RtlGenRandom(out, (ULONG)len);
}
