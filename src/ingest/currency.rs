//! ISO 4217 currency codes in circulation (the list maintained by SIX on behalf of ISO),
//! plus the fund and precious-metal codes stores never use left out.

const CODES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB \
BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB \
EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD \
JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU \
MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB \
RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD \
TWD TZS UAH UGX USD UYU UZS VES VED VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL";

static SET: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| CODES.split_ascii_whitespace().collect());

pub fn is_iso4217(code: &str) -> bool {
    code.len() == 3 && SET.contains(code)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_codes() {
        for c in [
            "USD", "EUR", "GBP", "BRL", "MXN", "IDR", "THB", "AED", "SGD", "KWD",
        ] {
            assert!(super::is_iso4217(c), "{c}");
        }
        assert!(!super::is_iso4217("usd"));
        assert!(!super::is_iso4217("XYZ"));
    }
}
