// Thread-safety annotations for clang's static analysis (-Wthread-safety).
//
// A member marked GUARDED_BY(mu_) may only be touched with mu_ held; a function marked
// REQUIRES(mu_) may only be called with it held, EXCLUDES(mu_) only without. clang checks this
// at compile time (the build-san and build-tsan builds turn the warning on, and -Werror makes
// a violation fail CI). With other compilers the macros expand to nothing.
//
// The capability types themselves (Mutex, MutexLock, CondVar) are in util/mutex.h; std::mutex
// carries no annotations in libstdc++, so the analysis only sees locks taken through them.
//
// See https://clang.llvm.org/docs/ThreadSafetyAnalysis.html for the meaning of each attribute.

#ifndef FHIRBULK_UTIL_THREAD_ANNOTATIONS_H_
#define FHIRBULK_UTIL_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define FHIRBULK_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define FHIRBULK_THREAD_ANNOTATION(x)
#endif

// On a class: its objects are capabilities (a lock) named `x` in diagnostics.
#define CAPABILITY(x) FHIRBULK_THREAD_ANNOTATION(capability(x))
// On an RAII class: its constructor acquires and its destructor releases a capability.
#define SCOPED_CAPABILITY FHIRBULK_THREAD_ANNOTATION(scoped_lockable)

// On a data member: reads and writes need the capability held.
#define GUARDED_BY(x) FHIRBULK_THREAD_ANNOTATION(guarded_by(x))
// On a pointer member: the pointee needs the capability held (the pointer itself does not).
#define PT_GUARDED_BY(x) FHIRBULK_THREAD_ANNOTATION(pt_guarded_by(x))

// On a function: callers must hold (REQUIRES) or must not hold (EXCLUDES) the capabilities.
#define REQUIRES(...) FHIRBULK_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) FHIRBULK_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

// On a function: it acquires / releases the capabilities (the object itself when empty).
#define ACQUIRE(...) FHIRBULK_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) FHIRBULK_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) FHIRBULK_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))

// On a function: it checks at run time that the capability is held, so the analysis may
// assume it from then on.
#define ASSERT_CAPABILITY(x) FHIRBULK_THREAD_ANNOTATION(assert_capability(x))

// On a function that returns a reference to a capability.
#define RETURN_CAPABILITY(x) FHIRBULK_THREAD_ANNOTATION(lock_returned(x))

// On a function whose locking the analysis cannot follow; each use says why.
#define NO_THREAD_SAFETY_ANALYSIS FHIRBULK_THREAD_ANNOTATION(no_thread_safety_analysis)

#endif  // FHIRBULK_UTIL_THREAD_ANNOTATIONS_H_
