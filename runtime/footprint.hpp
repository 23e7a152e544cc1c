#pragma once
// What the daemon does to keep its resident footprint to what it really uses.

namespace runtime {

// Drops this process's page-table entries for the code and read-only data that
// start-up touched (configuration parsing, argument handling, first-boot work): the
// pages stay in the page cache and fault back in, cheaply, the next time they run.
// Only file-backed, read-only mappings holding no private copy are touched, so nothing
// can be lost; heap pages that malloc no longer uses go back to the kernel too.
// Returns the bytes unmapped (for the daemon log).
unsigned long release_startup_pages() noexcept;

// The same, shaped for Reactor::once_before_sleep: run as the loop's last act before an
// idle wait, only the code between it and the wait faults back (a few pages of the
// reactor), not the caller's, a logger's and every frame's in between.
void release_startup_pages_now() noexcept;

// The cheap kind, for work that recurs (the history sampler's tick, actors/history.hpp):
// only the executable's own read-only segments (code, rodata), found with dl_iterate_phdr
// (no /proc read), whole pages inside each. A tick's code is spread over a few 64 KiB
// fault-around windows of the binary; without this they would stay mapped between ticks
// (~0.4 MiB of PSS at 10 services). Our PIE has no text relocations, so these pages
// never hold a private copy. Shaped for Reactor::once_before_sleep.
void release_own_code_pages() noexcept;

}  // namespace runtime
