//! Province codes: the two leading digits of a civilian plate name where it was registered.
//!
//! Kept as data apart from the grammar because it changes with administrative reforms, not with the
//! plate format. Sources: Circular 58/2020/TT-BCA and 24/2023/TT-BCA annexes for the pre-2025 list;
//! for the 1 July 2025 province mergers (Resolution 202/2025/QH15, 63 → 34 provinces), the Ministry
//! of Public Security guidance reported by Lao Động ("from 17 only 10 provinces have one plate
//! code"): every old code stays valid and belongs to the merged province. **\[verify\]** against
//! the annex of Circular 79/2024/TT-BCA as amended after the mergers: whether new registrations in
//! a merged province still use every old code is not settled by the sources we have.

/// A registration area behind a two-digit plate code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Province {
    /// The two-digit code as printed (11–99).
    pub code: u8,
    /// The province (or body) that issued the code before the 2025 mergers (77: `Bình Định`).
    pub name: &'static str,
    /// The province the code belongs to since 1 July 2025 (77: `Gia Lai`).
    pub province_2025: &'static str,
}

const HN: &str = "Hà Nội";
const HCM: &str = "TP. Hồ Chí Minh";

/// Every code in use, sorted. Codes 10, 13, 42, 44–46, 87, 91 and 96 are not issued.
const TABLE: &[Province] = &[
    p(11, "Cao Bằng", "Cao Bằng"),
    p(12, "Lạng Sơn", "Lạng Sơn"),
    p(14, "Quảng Ninh", "Quảng Ninh"),
    p(15, "Hải Phòng", "Hải Phòng"),
    p(16, "Hải Phòng", "Hải Phòng"),
    p(17, "Thái Bình", "Hưng Yên"),
    p(18, "Nam Định", "Ninh Bình"),
    p(19, "Phú Thọ", "Phú Thọ"),
    p(20, "Thái Nguyên", "Thái Nguyên"),
    p(21, "Yên Bái", "Lào Cai"),
    p(22, "Tuyên Quang", "Tuyên Quang"),
    p(23, "Hà Giang", "Tuyên Quang"),
    p(24, "Lào Cai", "Lào Cai"),
    p(25, "Lai Châu", "Lai Châu"),
    p(26, "Sơn La", "Sơn La"),
    p(27, "Điện Biên", "Điện Biên"),
    p(28, "Hòa Bình", "Phú Thọ"),
    p(29, HN, HN),
    p(30, HN, HN),
    p(31, HN, HN),
    p(32, HN, HN),
    p(33, HN, HN),
    p(34, "Hải Dương", "Hải Phòng"),
    p(35, "Ninh Bình", "Ninh Bình"),
    p(36, "Thanh Hóa", "Thanh Hóa"),
    p(37, "Nghệ An", "Nghệ An"),
    p(38, "Hà Tĩnh", "Hà Tĩnh"),
    p(39, "Đồng Nai", "Đồng Nai"),
    p(40, HN, HN),
    p(41, HCM, HCM),
    p(43, "Đà Nẵng", "Đà Nẵng"),
    p(47, "Đắk Lắk", "Đắk Lắk"),
    p(48, "Đắk Nông", "Lâm Đồng"),
    p(49, "Lâm Đồng", "Lâm Đồng"),
    p(50, HCM, HCM),
    p(51, HCM, HCM),
    p(52, HCM, HCM),
    p(53, HCM, HCM),
    p(54, HCM, HCM),
    p(55, HCM, HCM),
    p(56, HCM, HCM),
    p(57, HCM, HCM),
    p(58, HCM, HCM),
    p(59, HCM, HCM),
    p(60, "Đồng Nai", "Đồng Nai"),
    p(61, "Bình Dương", HCM),
    p(62, "Long An", "Tây Ninh"),
    p(63, "Tiền Giang", "Đồng Tháp"),
    p(64, "Vĩnh Long", "Vĩnh Long"),
    p(65, "Cần Thơ", "Cần Thơ"),
    p(66, "Đồng Tháp", "Đồng Tháp"),
    p(67, "An Giang", "An Giang"),
    p(68, "Kiên Giang", "An Giang"),
    p(69, "Cà Mau", "Cà Mau"),
    p(70, "Tây Ninh", "Tây Ninh"),
    p(71, "Bến Tre", "Vĩnh Long"),
    p(72, "Bà Rịa – Vũng Tàu", HCM),
    p(73, "Quảng Bình", "Quảng Trị"),
    p(74, "Quảng Trị", "Quảng Trị"),
    p(75, "Thừa Thiên Huế", "Huế"),
    p(76, "Quảng Ngãi", "Quảng Ngãi"),
    p(77, "Bình Định", "Gia Lai"),
    p(78, "Phú Yên", "Đắk Lắk"),
    p(79, "Khánh Hòa", "Khánh Hòa"),
    // [verify] 80 is the national Traffic Police Department's code (central agencies, some foreign
    // missions); it is not a province.
    p(
        80,
        "Cục Cảnh sát giao thông (central)",
        "Cục Cảnh sát giao thông (central)",
    ),
    p(81, "Gia Lai", "Gia Lai"),
    p(82, "Kon Tum", "Quảng Ngãi"),
    p(83, "Sóc Trăng", "Cần Thơ"),
    p(84, "Trà Vinh", "Vĩnh Long"),
    p(85, "Ninh Thuận", "Khánh Hòa"),
    p(86, "Bình Thuận", "Lâm Đồng"),
    p(88, "Vĩnh Phúc", "Phú Thọ"),
    p(89, "Hưng Yên", "Hưng Yên"),
    p(90, "Hà Nam", "Ninh Bình"),
    p(92, "Quảng Nam", "Đà Nẵng"),
    p(93, "Bình Phước", "Đồng Nai"),
    p(94, "Bạc Liêu", "Cà Mau"),
    p(95, "Hậu Giang", "Cần Thơ"),
    p(97, "Bắc Kạn", "Thái Nguyên"),
    p(98, "Bắc Giang", "Bắc Ninh"),
    p(99, "Bắc Ninh", "Bắc Ninh"),
];

const fn p(code: u8, name: &'static str, province_2025: &'static str) -> Province {
    Province {
        code,
        name,
        province_2025,
    }
}

/// Lookup table indexed by code (0–99): index into `TABLE`, or `u8::MAX` when the code is unused.
/// Built at compile time so the decoder's inner loop is one array read.
const INDEX: [u8; 100] = {
    let mut idx = [u8::MAX; 100];
    let mut i = 0;
    while i < TABLE.len() {
        idx[TABLE[i].code as usize] = i as u8;
        i += 1;
    }
    idx
};

/// The province behind a two-digit code, or `None` for a code that is not issued.
pub fn province(code: u8) -> Option<&'static Province> {
    let i = *INDEX.get(code as usize)?;
    TABLE.get(i as usize)
}

/// Whether `code` (0–99) is issued; the cheap form of [`province`] for decoders.
pub fn is_known_code(code: u8) -> bool {
    INDEX.get(code as usize).is_some_and(|&i| i != u8::MAX)
}

/// Every issued code with its province, sorted by code.
pub fn all() -> &'static [Province] {
    TABLE
}

/// The codes of one province, by its post-2025 name (e.g. `Tây Ninh` → `[62, 70]`).
pub fn codes_of(province_2025: &str) -> Vec<u8> {
    TABLE
        .iter()
        .filter(|p| p.province_2025 == province_2025)
        .map(|p| p.code)
        .collect()
}

/// A set of two-digit province codes, as a bit mask (copyable, no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CodeSet(pub u128);

impl CodeSet {
    /// The set of `codes` (values ≥ 100 are ignored).
    pub fn of(codes: &[u8]) -> CodeSet {
        CodeSet(
            codes
                .iter()
                .filter(|&&c| c < 100)
                .fold(0u128, |m, &c| m | (1u128 << c)),
        )
    }

    /// Every code of a province by its post-2025 name (e.g. `Tây Ninh` → {62, 70}).
    pub fn of_province(province_2025: &str) -> CodeSet {
        CodeSet::of(&codes_of(province_2025))
    }

    /// Whether `code` is in the set.
    pub fn contains(self, code: u8) -> bool {
        code < 100 && self.0 & (1u128 << code) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_indexed() {
        assert!(TABLE.windows(2).all(|w| w[0].code < w[1].code));
        for p in TABLE {
            assert_eq!(province(p.code).map(|q| q.code), Some(p.code));
            assert!((11..=99).contains(&p.code));
        }
        // 63 provinces before the mergers use 80 codes (Hà Nội 6, TP.HCM 11, Hải Phòng 2,
        // Đồng Nai 2), plus the central code 80.
        assert_eq!(TABLE.len(), 81);
    }

    #[test]
    fn unused_codes_are_unknown() {
        for code in [0, 1, 9, 10, 13, 42, 44, 45, 46, 87, 91, 96] {
            assert!(!is_known_code(code), "{code}");
            assert!(province(code).is_none());
        }
        assert!(!is_known_code(100));
        assert!(!is_known_code(255));
    }

    #[test]
    fn multi_code_provinces() {
        assert_eq!(codes_of(HN), vec![29, 30, 31, 32, 33, 40]);
        assert_eq!(
            codes_of(HCM),
            vec![41, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 61, 72]
        );
        assert_eq!(codes_of("Tây Ninh"), vec![62, 70]);
        assert_eq!(codes_of("Gia Lai"), vec![77, 81]);
        assert_eq!(codes_of("Hải Phòng"), vec![15, 16, 34]);
        assert_eq!(codes_of("Đồng Nai"), vec![39, 60, 93]);
    }

    #[test]
    fn the_34_provinces_after_the_mergers() {
        let mut names: Vec<&str> = TABLE
            .iter()
            .filter(|p| p.code != 80)
            .map(|p| p.province_2025)
            .collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 34, "{names:?}");
        let mut old: Vec<&str> = TABLE
            .iter()
            .filter(|p| p.code != 80)
            .map(|p| p.name)
            .collect();
        old.sort_unstable();
        old.dedup();
        assert_eq!(old.len(), 63);
    }

    #[test]
    fn code_sets() {
        let tn = CodeSet::of_province("Tây Ninh");
        assert!(tn.contains(62) && tn.contains(70) && !tn.contains(77));
        assert_eq!(CodeSet::of(&[200, 100]), CodeSet::default());
        assert!(!CodeSet::of(&[99]).contains(200));
        assert!(CodeSet::of(&[0, 99]).contains(0));
    }

    #[test]
    fn names_of_footage_codes() {
        assert_eq!(province(77).map(|p| p.name), Some("Bình Định"));
        assert_eq!(province(81).map(|p| p.province_2025), Some("Gia Lai"));
        assert_eq!(province(70).map(|p| p.name), Some("Tây Ninh"));
        assert_eq!(province(62).map(|p| p.province_2025), Some("Tây Ninh"));
    }
}
