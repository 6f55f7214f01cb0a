/*
 * The part of the Windows backend that has to be C (see "User-mode source surfaces" in
 * viogpudo/os/nt.rs): MmProbeAndLockPages reports a bad user-mode range by raising an
 * exception, which only structured exception handling catches, and Rust has none. Each
 * function is one kernel call; build.rs compiles this file with the EWDK's cl.exe (/kernel)
 * on Windows only.
 */
#include <ntddk.h>

/* MM_USER_PROBE_ADDRESS, the first address that is not user-mode memory. On x64 the macro
 * reads the kernel's exported variable MmUserProbeAddress; reading it here keeps a data
 * import out of the Rust code. Any IRQL. */
ULONG_PTR viogpudo_user_probe_address(void)
{
    return (ULONG_PTR)MM_USER_PROBE_ADDRESS;
}

/* Probes the user-mode pages `mdl` describes for reading and locks them. Returns
 * STATUS_SUCCESS (the caller must MmUnlockPages), or the code of the exception the probe
 * raised (STATUS_ACCESS_VIOLATION for an invalid range, as the KMDOD sample returns it); then
 * nothing is locked. IRQL <= APC_LEVEL, in the context of the process that owns the range. */
NTSTATUS viogpudo_probe_and_lock_for_read(PMDL mdl)
{
    __try {
        MmProbeAndLockPages(mdl, UserMode, IoReadAccess);
    } __except (EXCEPTION_EXECUTE_HANDLER) {
        return GetExceptionCode();
    }
    return STATUS_SUCCESS;
}

/* A non-executable system-space mapping of the locked pages `mdl` describes, or NULL.
 * MmGetSystemAddressForMdlSafe is a macro, so only C can call it. The mapping goes away with
 * MmUnlockPages. IRQL <= DISPATCH_LEVEL. */
PVOID viogpudo_system_address_for_mdl(PMDL mdl)
{
    return MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority | MdlMappingNoExecute);
}
