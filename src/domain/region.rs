//! Administrative region codes (行政区划代码, GB/T 2260) as identifiers carry them: the
//! six digits in positions 3–8 of a unified social credit code and 1–6 of a resident
//! ID number. Only the province-level prefix is checked (the list of counties changes
//! every year, and an old identifier keeps its old county).

/// The province-level prefixes (first two digits) of GB/T 2260: 11–15 (north), 21–23
/// (north-east), 31–37 (east), 41–46 (centre and south), 50–54 (south-west), 61–65
/// (north-west), 71 (Taiwan), 81 and 82 (Hong Kong, Macao).
pub fn is_province(prefix: u32) -> bool {
    matches!(
        prefix,
        11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81 | 82
    )
}

/// Whether six ASCII digits can be a region code under a real province (`000000`
/// cannot). Anything else than six ASCII digits is not one.
pub fn is_region_code(code: &str) -> bool {
    code.len() == 6
        && code.bytes().all(|b| b.is_ascii_digit())
        && code[..2].parse::<u32>().is_ok_and(is_province)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn province_prefixes_are_the_gb_t_2260_list() {
        let provinces: Vec<u32> = (0..100).filter(|&p| is_province(p)).collect();
        assert_eq!(provinces.len(), 34, "{provinces:?}");
        for p in [11, 15, 21, 23, 31, 37, 41, 46, 50, 54, 61, 65, 71, 81, 82] {
            assert!(is_province(p), "{p}");
        }
        for p in [
            0, 10, 16, 20, 24, 30, 38, 40, 47, 49, 55, 60, 66, 70, 72, 80, 83, 99,
        ] {
            assert!(!is_province(p), "{p}");
        }
    }

    #[test]
    fn region_codes_need_six_digits_under_a_province() {
        assert!(is_region_code("371602"));
        assert!(is_region_code("110000"));
        for bad in [
            "000000",
            "991234",
            "37160",
            "3716021",
            "37160A",
            "３７１６０２",
            "",
        ] {
            assert!(!is_region_code(bad), "{bad:?}");
        }
    }
}
