# 公开统计
stats-title = 电子保函统计
stats-lede = 以电子保函代替现金投标保证金的情况。数字为平台累计，仅含汇总，不涉及任何投标人。
stats-issued = 出具保函（份）
stats-enterprises = 服务企业（家）
stats-projects = 服务项目（个）
stats-amount = 释放保证金（元）
stats-by-month = 按月份
stats-by-kind = 按出函机构类型
stats-month = 月份
stats-kind = 机构类型
stats-axis-guarantees = 保函（份）
stats-axis-yuan = 保证金（元）
stats-json = 以 JSON 格式获取这些数据
kind-bank = 银行保函
kind-insurer = 保证保险
kind-guarantor = 担保保函
