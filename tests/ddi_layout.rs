//! Holds every mirrored DXGK type, field, bitfield, callback signature and constant of
//! `viogpudo::ddi` against the facts computed from the WDK 10.0.26100 headers for
//! x86_64-pc-windows-msvc (`tests/wdk-facts/`), at the WIN8 interface version the driver uses.
//!
//! A mirrored item that the facts do not know, or whose size, offset, mask or value differs,
//! fails the test. The facts' WIN8 column is authoritative for sizes and bitfield positions.
// A malformed facts file or a mismatch should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use viogpudo::ddi::registry::{read_bits, write_bits, BitLayout, TypeKind, TypeLayout};
use viogpudo::ddi::{self, constant_table, layout_table, signature_table};

/// C enums the driver must name but for which the WDK facts carry neither a size row nor any
/// enumerator. MSVC gives every C enum the size of `int`, which the test still checks.
const ENUMS_WITHOUT_FACTS: &[&str] = &[
    "DXGK_SERVICES",
    "MEMORY_CACHING_TYPE",
    "DOCKING_STATE",
    "DXGK_WDDMVERSION",
];

fn facts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wdk-facts")
}

/// Data rows of a facts file: comment lines and the column header are skipped.
fn rows(file: &str) -> Vec<Vec<String>> {
    let text = fs::read_to_string(facts_dir().join(file)).expect("facts file readable");
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    lines.next().expect("column header");
    lines
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

struct Facts {
    /// (struct, field) -> (offset_or_value, detail) from ddi-layout.tsv.
    layout: HashMap<(String, String), (String, String)>,
    /// struct -> rows in file order, for scans by prefix.
    members: HashMap<String, Vec<(String, String, String)>>,
    /// (struct, field) -> WIN8 cell of ddi-layout-byversion.tsv.
    win8: HashMap<(String, String), String>,
    /// C enum tags (without the leading `_`) that have enumerators in ddi-constants.tsv.
    enum_tags: HashSet<String>,
    /// Names of function-pointer typedefs in ddi-signatures.tsv.
    fn_typedefs: HashSet<String>,
}

impl Facts {
    fn load() -> Facts {
        let mut layout = HashMap::new();
        let mut members: HashMap<String, Vec<(String, String, String)>> = HashMap::new();
        for r in rows("ddi-layout.tsv") {
            let detail = r.get(3).cloned().unwrap_or_default();
            layout.insert((r[0].clone(), r[1].clone()), (r[2].clone(), detail.clone()));
            members
                .entry(r[0].clone())
                .or_default()
                .push((r[1].clone(), r[2].clone(), detail));
        }
        let byversion = rows("ddi-layout-byversion.tsv");
        let mut win8 = HashMap::new();
        for r in byversion {
            win8.insert((r[0].clone(), r[1].clone()), r[2].clone());
        }
        let enum_tags = rows("ddi-constants.tsv")
            .into_iter()
            .filter(|r| r[3] != "#define")
            .map(|r| r[3].trim_start_matches('_').to_owned())
            .collect();
        let fn_typedefs = rows("ddi-signatures.tsv")
            .into_iter()
            .map(|r| r[2].clone())
            .collect();
        Facts {
            layout,
            members,
            win8,
            enum_tags,
            fn_typedefs,
        }
    }

    fn win8_cell(&self, ty: &str, path: &str) -> Option<&str> {
        self.win8
            .get(&(ty.to_owned(), path.to_owned()))
            .map(String::as_str)
            .filter(|c| *c != "-")
    }

    fn win8_size(&self, ty: &str) -> Option<usize> {
        self.win8_cell(ty, "(size)")
            .map(|c| c.parse().expect("size"))
    }

    fn align(&self, ty: &str) -> Option<usize> {
        self.layout
            .get(&(ty.to_owned(), "(align)".to_owned()))
            .map(|(v, _)| v.parse().expect("align"))
    }

    /// The byte offset of a member at WIN8 (the storage unit's for bitfields).
    fn win8_offset(&self, ty: &str, path: &str) -> Option<usize> {
        let cell = self.win8_cell(ty, path)?;
        let unit = cell.split(':').next().expect("offset");
        Some(unit.parse().expect("offset number"))
    }

    /// The size in bytes of a C type as the facts spell it, when the facts determine it.
    fn c_size(&self, c_type: &str) -> Option<usize> {
        let t = c_type.trim();
        if t.ends_with('*') {
            return Some(8);
        }
        if let Some((elem, rest)) = t.split_once('[') {
            let n: usize = rest.trim_end_matches(']').parse().ok()?;
            return self.c_size(elem).map(|s| s * n);
        }
        let scalar = match t {
            "UCHAR" | "BOOLEAN" | "BYTE" | "unsigned char" => Some(1),
            "USHORT" | "unsigned short" => Some(2),
            "ULONG" | "LONG" | "UINT" | "INT" | "DWORD" | "unsigned long" | "unsigned int" => {
                Some(4)
            }
            "SIZE_T" | "ULONG64" | "ULONGLONG" | "LONGLONG" | "D3DGPU_VIRTUAL_ADDRESS" => Some(8),
            "HANDLE" | "PVOID" | "PWCH" => Some(8),
            _ => None,
        };
        if scalar.is_some() {
            return scalar;
        }
        // Callback typedefs and the kernel's `P...` pointer typedefs are pointers.
        const POINTER_TYPEDEFS: &[&str] = &[
            "PDEVICE_OBJECT",
            "PCM_RESOURCE_LIST",
            "PSTATUS_BLOCK",
            "PINTERFACE",
            "PINTERFACE_REFERENCE",
            "PINTERFACE_DEREFERENCE",
        ];
        if self.fn_typedefs.contains(t) || POINTER_TYPEDEFS.contains(&t) {
            return Some(8);
        }
        let name = t
            .trim_start_matches("struct ")
            .trim_start_matches("union ")
            .trim_start_matches("enum ")
            .trim_start_matches('_');
        if name.contains("::") {
            return None;
        }
        if let Some(size) = self.win8_size(name) {
            return Some(size);
        }
        if name == "tagPOINT" {
            return self.win8_size("POINT");
        }
        if name == "tagRECT" {
            return self.win8_size("RECT");
        }
        if self.enum_tags.contains(name) || ENUMS_WITHOUT_FACTS.contains(&name) {
            return Some(4);
        }
        None
    }
}

/// Where a registered type's members live in the facts: (C struct, path prefix, base offset).
fn context(facts: &Facts, t: &TypeLayout) -> (String, String, usize) {
    match t.kind {
        TypeKind::Named => (t.name.to_owned(), String::new(), 0),
        TypeKind::Embedded { parent, path } => {
            let base = facts
                .win8_offset(parent, path)
                .unwrap_or_else(|| panic!("{}: {parent}.{path} not in the WIN8 facts", t.name));
            let prefix = if path.starts_with("(anon") {
                String::new()
            } else {
                format!("{path}.")
            };
            (parent.to_owned(), prefix, base)
        }
        TypeKind::Alias | TypeKind::Opaque => unreachable!("no members"),
    }
}

fn check_field(facts: &Facts, t: &TypeLayout, path: &str, offset: usize) {
    let (c_struct, prefix, base) = context(facts, t);
    let full = format!("{prefix}{path}");
    if full.ends_with("(bitfield unit)") {
        let scope = full.trim_end_matches("(bitfield unit)");
        let found = facts.members[&c_struct].iter().any(|(p, _, detail)| {
            p.starts_with(scope)
                && !p[scope.len()..].contains('.')
                && detail.starts_with("bitfield")
                && facts.win8_offset(&c_struct, p) == Some(base + offset)
        });
        assert!(
            found,
            "{}: no WIN8 bitfield unit at {c_struct} {scope}* offset {}",
            t.name,
            base + offset
        );
        return;
    }
    let expected = facts
        .win8_offset(&c_struct, &full)
        .unwrap_or_else(|| panic!("{}: field {c_struct}.{full} not in the WIN8 facts", t.name));
    assert_eq!(
        base + offset,
        expected,
        "{}: offset of {c_struct}.{full}",
        t.name
    );
    let (header_offset, _) = &facts.layout[&(c_struct.clone(), full.clone())];
    let header_unit: usize = header_offset.parse().expect("offset");
    assert_eq!(
        expected, header_unit,
        "{c_struct}.{full}: WIN8 and header offsets differ"
    );
}

fn mask_from_detail(detail: &str) -> u64 {
    let hex = detail
        .split("mask 0x")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_else(|| panic!("no mask in {detail}"));
    u64::from_str_radix(hex, 16).expect("hex mask")
}

fn check_bits(facts: &Facts, t: &TypeLayout, b: &BitLayout) {
    let (c_struct, prefix, base) = context(facts, t);
    let full = format!("{prefix}{}", b.path);
    let cell = facts.win8_cell(&c_struct, &full).unwrap_or_else(|| {
        panic!(
            "{}: bitfield {c_struct}.{full} not in the WIN8 facts",
            t.name
        )
    });
    let (_, detail) = &facts.layout[&(c_struct.clone(), full.clone())];
    match cell.split_once(":b") {
        Some((unit, spec)) => {
            let (bit, width) = spec.split_once('+').expect("bit+width");
            let bit: u32 = bit.parse().expect("bit");
            let width: u32 = width.parse().expect("width");
            let mask = if width == 64 {
                u64::MAX
            } else {
                ((1u64 << width) - 1) << bit
            };
            assert_eq!(
                base + b.offset,
                unit.parse::<usize>().expect("unit"),
                "{c_struct}.{full}: unit"
            );
            assert_eq!(b.mask, mask, "{c_struct}.{full}: WIN8 mask");
        }
        None => {
            // A whole field at WIN8 that later versions split into bits (the target-mode
            // Preference): the accessor uses the later, narrower mask, which holds every value
            // the WIN8 field can take.
            assert!(
                detail.contains("WIN8: full field"),
                "{c_struct}.{full}: {detail}"
            );
            assert_eq!(base + b.offset, cell.parse::<usize>().expect("offset"));
            assert_eq!(b.mask, mask_from_detail(detail), "{c_struct}.{full}: mask");
        }
    }
}

/// Every top-level C member present at WIN8 must lie inside some mirrored field, so no byte
/// of a mirrored struct is left out.
fn check_covered(facts: &Facts, t: &TypeLayout) {
    let spans: Vec<(usize, usize)> = t
        .fields
        .iter()
        .filter_map(|f| f.size.map(|s| (f.offset, f.offset + s)))
        .collect();
    for (path, _, _) in &facts.members[t.name] {
        if path.starts_with('(') || path.contains('.') {
            continue;
        }
        let Some(offset) = facts.win8_offset(t.name, path) else {
            continue;
        };
        assert!(
            spans.iter().any(|&(a, e)| a <= offset && offset < e),
            "{}: C member {path} at {offset} is not covered by a mirrored field",
            t.name
        );
    }
}

/// Checks the Rust type of each top-level field against its C type; returns how many fields
/// the facts determined a size for.
fn check_field_types(facts: &Facts, t: &TypeLayout) -> usize {
    let mut checked = 0;
    for f in t.fields {
        let (Some(size), false) = (f.size, f.path.starts_with('(')) else {
            continue;
        };
        let (_, detail) = &facts.layout[&(t.name.to_owned(), f.path.to_owned())];
        let c_type = detail.split(';').next().expect("type").trim();
        if facts.fn_typedefs.contains(c_type) {
            assert_eq!(f.ty, c_type, "{}.{}: callback typedef", t.name, f.path);
        }
        match facts.c_size(c_type) {
            Some(c_size) => {
                checked += 1;
                assert_eq!(
                    size, c_size,
                    "{}.{}: size of {c_type} vs Rust {}",
                    t.name, f.path, f.ty
                );
            }
            None => eprintln!("no size rule for {}.{}: {c_type}", t.name, f.path),
        }
    }
    checked
}

#[test]
fn every_mirrored_type_has_its_win8_size_offsets_and_masks() {
    let facts = Facts::load();
    let (mut named, mut embedded, mut aliases, mut opaque) = (0, 0, 0, 0);
    let (mut fields, mut bits, mut typed) = (0, 0, 0);
    for t in layout_table() {
        match t.kind {
            TypeKind::Named => {
                named += 1;
                let size = facts
                    .win8_size(t.name)
                    .unwrap_or_else(|| panic!("{}: no WIN8 size in the facts", t.name));
                assert_eq!(t.size, size, "{}: size at WIN8", t.name);
                assert_eq!(Some(t.align), facts.align(t.name), "{}: alignment", t.name);
                check_covered(&facts, t);
                typed += check_field_types(&facts, t);
            }
            TypeKind::Embedded { .. } => embedded += 1,
            TypeKind::Alias => {
                aliases += 1;
                match facts.win8_size(t.name) {
                    Some(size) => {
                        assert_eq!(t.size, size, "{}: size", t.name);
                        assert_eq!(Some(t.align), facts.align(t.name), "{}: align", t.name);
                    }
                    None => {
                        let known_enum = facts.enum_tags.contains(t.name)
                            || ENUMS_WITHOUT_FACTS.contains(&t.name);
                        assert!(
                            known_enum,
                            "{}: neither a size row nor a C enum in the facts",
                            t.name
                        );
                        assert_eq!((t.size, t.align), (4, 4), "{}: a C enum is an int", t.name);
                    }
                }
            }
            TypeKind::Opaque => {
                opaque += 1;
                assert!(
                    facts.win8_size(t.name).is_none(),
                    "{}: the facts know its layout, so mirror it instead of leaving it opaque",
                    t.name
                );
            }
        }
        for f in t.fields {
            fields += 1;
            check_field(&facts, t, f.path, f.offset);
        }
        for b in t.bits {
            bits += 1;
            check_bits(&facts, t, b);
        }
    }
    eprintln!(
        "checked {named} named + {embedded} embedded structs, {aliases} enums/scalars, \
         {opaque} opaque types, {fields} field offsets ({typed} top-level field types), \
         {bits} bitfield masks"
    );
    assert!(
        named >= 60 && fields >= 400 && bits >= 60,
        "registry unexpectedly small"
    );
}

/// Expected size of a parameter from its canonical C type.
fn param_size(canonical: &str) -> usize {
    let c = canonical.trim();
    if c.contains('*') {
        return 8;
    }
    match c {
        "void" => 0,
        "unsigned char" => 1,
        "unsigned short" => 2,
        "long" | "unsigned long" | "int" | "unsigned int" => 4,
        "unsigned long long" | "union _LARGE_INTEGER" => 8,
        _ if c.starts_with("enum ") || c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_') => {
            4
        }
        _ => panic!("no size rule for C type {c}"),
    }
}

/// The struct/enum name a canonical C type refers to, if any (`struct _X *` -> `X`).
fn referenced_name(canonical: &str) -> Option<String> {
    let words: Vec<&str> = canonical.split_whitespace().collect();
    let pos = words.iter().position(|w| *w == "struct" || *w == "enum")?;
    let name = words.get(pos + 1)?.trim_end_matches('*');
    Some(
        name.trim_start_matches('_')
            .trim_end_matches("__")
            .to_owned(),
    )
}

#[test]
fn every_callback_typedef_matches_its_c_signature() {
    let mut sigs: HashMap<String, HashMap<usize, String>> = HashMap::new();
    for r in rows("ddi-signatures.tsv") {
        let index: usize = r[3].parse().expect("param index");
        sigs.entry(r[2].clone())
            .or_default()
            .insert(index, r[5].clone());
    }
    let mut count = 0;
    let mut params = 0;
    for s in signature_table() {
        count += 1;
        let c = sigs
            .get(s.name)
            .unwrap_or_else(|| panic!("{}: not in ddi-signatures.tsv", s.name));
        assert_eq!(s.params.len() + 1, c.len(), "{}: parameter count", s.name);
        let mut all = vec![(0, &s.ret)];
        all.extend(s.params.iter().enumerate().map(|(i, p)| (i + 1, p)));
        for (i, p) in all {
            params += 1;
            let canonical = &c[&i];
            assert_eq!(
                p.size,
                param_size(canonical),
                "{} param {i}: {canonical} vs {}",
                s.name,
                p.ty
            );
            if let Some(name) = referenced_name(canonical) {
                assert!(
                    p.ty.contains(&name),
                    "{} param {i}: {canonical} vs {}",
                    s.name,
                    p.ty
                );
            }
            if canonical.contains("(*)") {
                assert!(
                    p.ty.contains("extern \"system\" fn"),
                    "{} param {i}: {}",
                    s.name,
                    p.ty
                );
            }
            if canonical.starts_with("const ") && canonical.contains('*') {
                let inner = p.ty.rfind("*const").expect("pointer to const");
                assert!(
                    p.ty.rfind("*mut").is_none_or(|m| m < inner),
                    "{} param {i}",
                    s.name
                );
            }
        }
    }
    eprintln!("checked {count} callback typedefs, {params} parameter/return types");
    assert!(count >= 70, "registry unexpectedly small");
}

#[test]
fn every_mirrored_constant_has_the_header_value() {
    let values: HashMap<String, i64> = rows("ddi-constants.tsv")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().expect("value")))
        .collect();
    let mut seen = BTreeSet::new();
    for c in constant_table() {
        let expected = values
            .get(c.name)
            .unwrap_or_else(|| panic!("{}: not in ddi-constants.tsv", c.name));
        assert_eq!(c.value, *expected, "{}", c.name);
        assert!(seen.insert(c.name), "{} declared twice", c.name);
    }
    eprintln!("checked {} constants", seen.len());
    assert!(seen.len() >= 500, "registry unexpectedly small");
}

/// Names declared in the ddi sources as `pub struct|union|type|const NAME`.
fn declared_names(kind: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("viogpudo/ddi");
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).expect("ddi sources") {
        let path = entry.expect("entry").path();
        let file = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if file == "registry.rs" || file == "macros.rs" {
            continue;
        }
        let text = fs::read_to_string(&path).expect("source");
        let needle = format!("pub {kind} ");
        for line in text.lines() {
            let Some(rest) = line.trim_start().strip_prefix(&needle) else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                .collect();
            if !name.is_empty() && name != "fn" {
                out.push((file.clone(), name));
            }
        }
    }
    out
}

#[test]
fn every_declared_item_is_registered() {
    let types: HashSet<&str> = layout_table().map(|t| t.name).collect();
    let fns: HashSet<&str> = signature_table().map(|s| s.name).collect();
    let consts: HashSet<&str> = constant_table().map(|c| c.name).collect();
    for (file, name) in declared_names("struct")
        .into_iter()
        .chain(declared_names("union"))
    {
        assert!(
            types.contains(name.as_str()),
            "{file}: {name} is not in layout_table()"
        );
    }
    for (file, name) in declared_names("type") {
        assert!(
            types.contains(name.as_str()) || fns.contains(name.as_str()),
            "{file}: type {name} is in neither layout_table() nor signature_table()"
        );
    }
    for (file, name) in declared_names("const") {
        assert!(
            consts.contains(name.as_str()),
            "{file}: const {name} is not in constant_table()"
        );
    }
}

#[test]
fn bitfield_writes_touch_only_their_own_bits() {
    for t in layout_table() {
        for b in t.bits {
            let shift = b.mask.trailing_zeros();
            let mut word = u64::MAX;
            write_bits(&mut word, b.mask, 0);
            assert_eq!(word, !b.mask, "{}.{}: clearing", t.name, b.path);
            let mut word = 0u32;
            write_bits(&mut word, b.mask, u64::MAX);
            assert_eq!(
                u64::from(word),
                b.mask & 0xFFFF_FFFF,
                "{}.{}: setting",
                t.name,
                b.path
            );
            assert_eq!(read_bits(word, b.mask), (b.mask & 0xFFFF_FFFF) >> shift);
        }
    }
}

#[test]
fn accessors_keep_neighbouring_bits() {
    let mut flags = ddi::DXGK_POINTERFLAGS { Value: 0xFFFF_FFFF };
    flags.set_color(false);
    assert_eq!(flags.Value, 0xFFFF_FFFD);
    assert!(flags.monochrome() && flags.masked_color() && !flags.color());

    let mut mode = ddi::D3DKMDT_VIDPN_TARGET_MODE {
        Preference: 0xABCD_0000,
        ..Default::default()
    };
    mode.set_preference(ddi::D3DKMDT_MP_PREFERRED);
    assert_eq!(mode.Preference, 0xABCD_0001);
    assert_eq!(mode.preference(), ddi::D3DKMDT_MP_PREFERRED);

    let mut signal = ddi::D3DKMDT_VIDEO_SIGNAL_INFO::default();
    signal.set_vsync_freq_divider(1);
    signal.set_scan_line_ordering(ddi::D3DDDI_VSSLO_PROGRESSIVE);
    assert_eq!(signal.AdditionalSignalInfo, (1 << 3) | 1);
    signal.set_scan_line_ordering(ddi::D3DDDI_VSSLO_OTHER); // 255 does not fit 3 bits
    assert_eq!(signal.AdditionalSignalInfo, (1 << 3) | 7);
    assert_eq!(signal.vsync_freq_divider(), 1);

    let mut timing = ddi::DXGK_TARGETMODE_DETAIL_TIMING::default();
    timing.DetailTiming.set_horizontal_front_porch(0x1234);
    timing.DetailTiming.set_horizontal_sync_polarity(true);
    assert_eq!(timing.DetailTiming.HorizontalFrontPorchAndPolarity, 0x9234);
    timing.DetailTiming.set_pixel_clock(0x0123_4567);
    timing.DetailTiming.set_preferred_timing(true);
    assert_eq!(timing.DetailTiming.ClockAndFlags, 0x8023_4567);
    assert_eq!(timing.DetailTiming.pixel_clock(), 0x23_4567);
}

#[test]
fn defaults_are_all_zero_and_sizes_match_the_chosen_version() {
    let init = ddi::KMDDOD_INITIALIZATION_DATA::default();
    assert_eq!(init.Version, 0);
    assert!(init.DxgkDdiAddDevice.is_none() && init.DxgkDdiNotifySurpriseRemoval.is_none());
    assert_eq!(core::mem::size_of::<ddi::KMDDOD_INITIALIZATION_DATA>(), 328);
    assert_eq!(ddi::DXGKDDI_INTERFACE_VERSION_WIN8, 0x300E);

    let mut status = ddi::DXGK_CHILD_STATUS::default();
    status.set_hot_plug_connected(true);
    assert!(status.hot_plug_connected());
    assert_eq!(status.rotation_angle(), 1);

    let mut range = ddi::D3DKMDT_MONITOR_FREQUENCY_RANGE::default();
    range.set_active_size(ddi::D3DKMDT_2DREGION::new(1920, 1080));
    assert_eq!(range.Constraint, (1080usize << 32) | 1920);
    assert_eq!(range.active_size().cy, 1080);

    let addr = ddi::LARGE_INTEGER::new(-2);
    assert_eq!((addr.low_part(), addr.high_part()), (0xFFFF_FFFE, -1));
    assert!(ddi::nt_success(ddi::STATUS_GRAPHICS_MODE_NOT_PINNED));
    assert!(!ddi::nt_success(ddi::STATUS_GRAPHICS_INVALID_VIDPN));
}
