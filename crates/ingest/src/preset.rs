//! Built-in field mappings for common export shapes, so a typical export needs only
//! `preset = "taobao"` in its source. Each canonical field lists the column names seen in
//! that platform's exports; the first one present in a file's header is used.

use shopfuse_core::EntityKind;

pub type PresetFields = &'static [(&'static str, &'static [&'static str])];

pub const PRESETS: &[&str] = &["taobao", "jd", "amazon", "canonical"];

pub fn preset(name: &str, kind: EntityKind) -> Option<PresetFields> {
    use EntityKind::*;
    Some(match (name, kind) {
        ("canonical", _) => &[],
        ("taobao", Products) => &[
            ("listing_id", &["宝贝ID", "商品ID"]),
            ("title", &["宝贝标题", "商品标题", "宝贝名称"]),
            ("brand", &["品牌"]),
            ("category", &["类目", "商品类目"]),
            ("price", &["价格", "一口价"]),
            ("model_code", &["型号"]),
            ("gtin", &["条形码", "商品条码"]),
            ("color", &["颜色分类", "颜色"]),
            ("capacity", &["存储容量", "规格", "容量"]),
            ("url", &["链接", "宝贝链接"]),
            ("stock", &["库存", "宝贝数量"]),
            ("listed_at", &["上架时间", "创建时间"]),
        ],
        ("taobao", Orders) => &[
            ("order_id", &["订单编号", "子订单编号"]),
            ("account_id", &["买家会员名"]),
            ("listing_id", &["宝贝ID", "商品ID"]),
            ("quantity", &["购买数量", "宝贝数量"]),
            ("unit_price", &["单价", "宝贝单价"]),
            ("ordered_at", &["下单时间", "订单创建时间"]),
            ("status", &["订单状态"]),
            ("phone", &["联系手机", "收货人手机"]),
            ("address", &["收货地址"]),
            ("city", &["城市", "收货城市"]),
            ("ip", &["IP地址"]),
            ("device_id", &["设备ID"]),
            ("payment_method", &["支付方式"]),
        ],
        ("taobao", Events) => &[
            ("account_id", &["用户ID", "买家会员名"]),
            ("listing_id", &["宝贝ID", "商品ID"]),
            ("event_type", &["行为类型"]),
            ("occurred_at", &["时间", "行为时间"]),
            ("session_id", &["会话ID"]),
        ],
        ("taobao", Reviews) => &[
            ("review_id", &["评价ID"]),
            ("listing_id", &["宝贝ID", "商品ID"]),
            ("account_id", &["买家会员名"]),
            ("rating", &["评分"]),
            ("text", &["评价内容"]),
            ("reviewed_at", &["评价时间"]),
        ],
        ("taobao", Customers) => &[
            ("account_id", &["会员名", "买家会员名"]),
            ("name", &["姓名", "收货人姓名"]),
            ("phone", &["手机", "联系手机"]),
            ("email", &["邮箱"]),
            ("address", &["地址", "收货地址"]),
            ("city", &["城市"]),
            ("registered_at", &["注册时间"]),
        ],
        ("jd", Products) => &[
            ("listing_id", &["skuId"]),
            ("title", &["skuName"]),
            ("brand", &["brandName"]),
            ("category", &["categoryName"]),
            ("price", &["jdPrice"]),
            ("model_code", &["modelNo"]),
            ("gtin", &["upc"]),
            ("color", &["color"]),
            ("capacity", &["spec"]),
            ("url", &["itemUrl"]),
            ("stock", &["stockNum"]),
            ("listed_at", &["onShelfTime"]),
        ],
        ("jd", Orders) => &[
            ("order_id", &["orderId"]),
            ("account_id", &["pin"]),
            ("listing_id", &["skuId"]),
            ("quantity", &["num"]),
            ("unit_price", &["price"]),
            ("ordered_at", &["orderTime"]),
            ("status", &["orderState"]),
            ("phone", &["mobile"]),
            ("address", &["address"]),
            ("city", &["city"]),
            ("ip", &["ip"]),
            ("device_id", &["deviceId"]),
            ("payment_method", &["payType"]),
        ],
        ("jd", Events) => &[
            ("account_id", &["pin"]),
            ("listing_id", &["skuId"]),
            ("event_type", &["behavior"]),
            ("occurred_at", &["time"]),
            ("session_id", &["sessionId"]),
        ],
        ("jd", Reviews) => &[
            ("review_id", &["commentId"]),
            ("listing_id", &["skuId"]),
            ("account_id", &["pin"]),
            ("rating", &["score"]),
            ("text", &["content"]),
            ("reviewed_at", &["creationTime"]),
        ],
        ("jd", Customers) => &[
            ("account_id", &["pin"]),
            ("name", &["realName"]),
            ("phone", &["mobile"]),
            ("email", &["email"]),
            ("address", &["address"]),
            ("city", &["city"]),
            ("registered_at", &["registerTime"]),
        ],
        ("amazon", Products) => &[
            ("listing_id", &["asin", "asin1"]),
            ("title", &["item-name"]),
            ("brand", &["brand"]),
            ("category", &["product-type"]),
            ("price", &["price"]),
            ("model_code", &["model-number"]),
            ("gtin", &["external-product-id", "ean", "upc"]),
            ("color", &["color-name"]),
            ("capacity", &["size-name"]),
            ("url", &["product-url"]),
            ("stock", &["quantity"]),
            ("listed_at", &["open-date"]),
        ],
        ("amazon", Orders) => &[
            ("order_id", &["amazon-order-id"]),
            ("account_id", &["buyer-id"]),
            ("listing_id", &["asin"]),
            ("quantity", &["quantity-purchased", "quantity"]),
            ("unit_price", &["item-price"]),
            ("currency", &["currency"]),
            ("ordered_at", &["purchase-date"]),
            ("status", &["order-status"]),
            ("phone", &["buyer-phone-number"]),
            ("address", &["ship-address"]),
            ("city", &["ship-city"]),
            ("ip", &["ip-address"]),
            ("device_id", &["device-id"]),
            ("payment_method", &["payment-method"]),
        ],
        ("amazon", Events) => &[
            ("account_id", &["customer-id"]),
            ("listing_id", &["asin"]),
            ("event_type", &["event"]),
            ("occurred_at", &["event-time"]),
            ("session_id", &["session-id"]),
        ],
        ("amazon", Reviews) => &[
            ("review_id", &["review-id"]),
            ("listing_id", &["asin"]),
            ("account_id", &["customer-id"]),
            ("rating", &["star-rating"]),
            ("text", &["review-body"]),
            ("reviewed_at", &["review-date"]),
        ],
        ("amazon", Customers) => &[
            ("account_id", &["customer-id", "buyer-id"]),
            ("name", &["buyer-name"]),
            ("phone", &["buyer-phone-number"]),
            ("email", &["buyer-email"]),
            ("address", &["ship-address"]),
            ("city", &["ship-city"]),
            ("registered_at", &["customer-since"]),
        ],
        _ => return None,
    })
}

/// The header the generator writes for a preset: each field's first column name.
pub fn preset_header(name: &str, kind: EntityKind) -> Option<Vec<(&'static str, &'static str)>> {
    let fields = preset(name, kind)?;
    if fields.is_empty() {
        return Some(kind.fields().iter().map(|f| (f.name, f.name)).collect());
    }
    Some(
        fields
            .iter()
            .map(|(canonical, cols)| (*canonical, cols[0]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_covers_every_kind_and_names_only_canonical_fields() {
        for name in PRESETS {
            for kind in EntityKind::ALL {
                let fields = preset(name, kind).unwrap_or_else(|| panic!("{name}/{kind} missing"));
                for (canonical, cols) in fields {
                    assert!(
                        kind.field(canonical).is_some(),
                        "{name}/{kind}: {canonical}"
                    );
                    assert!(!cols.is_empty());
                }
                for required in kind.fields().iter().filter(|f| f.required) {
                    let covered =
                        fields.is_empty() || fields.iter().any(|(c, _)| *c == required.name);
                    assert!(covered, "{name}/{kind} lacks required {}", required.name);
                }
            }
        }
    }
}
